package msgstream

import (
	"errors"
	"fmt"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/wire"
)

// ErrProtocol is matched by every error a Receiver returns for bad input:
// a fragment sequence the format forbids or a message that does not decode.
var ErrProtocol = errors.New("msgstream: protocol error")

// ErrTooLarge is matched by the error of Send and Check for a message that
// cannot be sent: beyond a wire limit or needing more fragments than the
// format allows. Nothing was sent.
var ErrTooLarge = errors.New("msgstream: message cannot be sent")

// ProtocolError is a bad message from one origin. It matches ErrProtocol and
// wraps the fragment or wire error that describes what was wrong.
type ProtocolError struct {
	// Origin is the member that sent the bad input.
	Origin gcs.MemberID
	// Err is the underlying fragment.ErrProtocol or wire error.
	Err error
}

// Error implements error.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("msgstream: protocol error from %s: %v", e.Origin, e.Err)
}

// Unwrap returns the underlying error.
func (e *ProtocolError) Unwrap() error { return e.Err }

// Is makes every ProtocolError match ErrProtocol.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// Config is shared by Senders and Receivers. Every node of a cluster must use
// the same values. The zero value means the defaults.
type Config struct {
	// Codec encodes and decodes messages; nil means a codec with
	// wire.DefaultConfig.
	Codec *wire.Codec
	// Fragment sets the fragment size (at most the gcs MaxMessage) and the
	// largest reassembled message.
	Fragment fragment.Config
}

// Validate reports a bad setting, naming it, its value and the fix.
func (c Config) Validate() error {
	if err := c.Fragment.Validate(); err != nil {
		return fmt.Errorf("msgstream: Config.Fragment: %w", err)
	}
	return nil
}

// codec returns the configured codec or a default one.
func (c Config) codec() (*wire.Codec, error) {
	if c.Codec != nil {
		return c.Codec, nil
	}
	return wire.NewCodec(wire.DefaultConfig())
}
