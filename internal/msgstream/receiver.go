package msgstream

import (
	"fmt"
	"sync/atomic"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/wire"
)

// ReceiveCounters are a Receiver's totals since it was made.
type ReceiveCounters struct {
	// Messages is the number of whole messages decoded.
	Messages uint64
	// Fragments is the number of fragments accepted.
	Fragments uint64
	// Bytes is the number of reassembled message bytes decoded.
	Bytes uint64
	// FragmentErrors counts fragments that broke the fragment format.
	FragmentErrors uint64
	// ProtocolErrors counts reassembled messages that did not decode.
	ProtocolErrors uint64
}

// Receiver reassembles and decodes the messages of one group's events. It
// is used by the one goroutine that receives the events; Counters may be
// called from any goroutine.
type Receiver struct {
	cfg   fragment.Config
	codec *wire.Codec
	// streams holds one reassembler per origin with a message in progress
	// or seen since the last view.
	streams map[gcs.MemberID]*fragment.Reassembler

	messages, fragments, bytes, fragmentErrors, protocolErrors atomic.Uint64
}

// NewReceiver returns a Receiver, or the error of cfg.Validate.
func NewReceiver(cfg Config) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := cfg.codec()
	if err != nil {
		return nil, fmt.Errorf("msgstream: default codec: %w", err)
	}
	return &Receiver{cfg: cfg.Fragment, codec: codec, streams: map[gcs.MemberID]*fragment.Reassembler{}}, nil
}

// Receive consumes one event, in the order the group delivered it. For a
// message event it returns the decoded message once its last fragment
// arrived, and nil before that. A view drops the state of origins no longer
// in it; a notice (the session restarted) drops all state. Bad input gives
// a *ProtocolError (matching ErrProtocol) naming the origin; the partial
// message is discarded and the origin's stream restarts at its next first
// fragment.
func (r *Receiver) Receive(ev gcs.Event) (wire.Message, error) {
	switch ev.Kind {
	case gcs.EventMessage:
	case gcs.EventView:
		for origin := range r.streams {
			if !ev.View.Contains(origin) {
				delete(r.streams, origin)
			}
		}
		return nil, nil
	case gcs.EventNotice:
		r.Reset()
		return nil, nil
	default:
		return nil, nil
	}
	ra := r.streams[ev.Origin]
	if ra == nil {
		var err error
		if ra, err = fragment.NewReassembler(r.cfg); err != nil {
			return nil, fmt.Errorf("msgstream: %w", err) // cannot happen: cfg was validated
		}
		r.streams[ev.Origin] = ra
	}
	b, done, err := ra.Add(ev.Data)
	if err != nil {
		r.fragmentErrors.Add(1)
		return nil, &ProtocolError{Origin: ev.Origin, Err: err}
	}
	r.fragments.Add(1)
	if !done {
		return nil, nil
	}
	m, err := r.codec.Unmarshal(b)
	if err != nil {
		r.protocolErrors.Add(1)
		return nil, &ProtocolError{Origin: ev.Origin, Err: err}
	}
	r.messages.Add(1)
	r.bytes.Add(uint64(len(b)))
	return m, nil
}

// Reset drops every origin's message in progress, for a restarted session.
func (r *Receiver) Reset() { clear(r.streams) }

// ResetOrigin drops origin's message in progress, for a sender known to
// have restarted its stream.
func (r *Receiver) ResetOrigin(origin gcs.MemberID) { delete(r.streams, origin) }

// Counters returns the totals so far. Safe to call at any time.
func (r *Receiver) Counters() ReceiveCounters {
	return ReceiveCounters{
		Messages: r.messages.Load(), Fragments: r.fragments.Load(), Bytes: r.bytes.Load(),
		FragmentErrors: r.fragmentErrors.Load(), ProtocolErrors: r.protocolErrors.Load(),
	}
}
