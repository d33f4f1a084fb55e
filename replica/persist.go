package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/repld/repld/internal/datadir"

	"github.com/repld/repld/storage"
)

// Files a replica keeps in its DataDir.
const (
	// QuarantineFile is the quarantine marker: present means quarantined.
	QuarantineFile = "quarantine.json"
)

// Quarantine says why a replica stopped applying. It is persisted as the
// marker and shown in Status.
type Quarantine struct {
	// Reason is a sentence for operators.
	Reason string `json:"reason"`
	// Code is the wire.FailureCode name reported to the primary.
	Code string `json:"code"`
	// Seq is the transaction's seq in the stream (0: a replayed one, or
	// none).
	Seq uint64 `json:"seq"`
	// TID is the transaction concerned, 0 if not known.
	TID storage.TID `json:"tid"`
	// Time is when the replica quarantined itself.
	Time time.Time `json:"time"`
}

// markerFile is the marker's persisted form; Version lets a later release
// change it.
type markerFile struct {
	Version    int        `json:"version"`
	Quarantine Quarantine `json:"quarantine"`
}

const markerVersion = 1

// readMarker returns the quarantine marker in dir, or nil if there is none.
func readMarker(dir string) (*Quarantine, error) {
	b, err := os.ReadFile(filepath.Join(dir, QuarantineFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replica: read quarantine marker: %w", err)
	}
	q, err := parseMarker(b)
	if err != nil {
		return nil, fmt.Errorf("replica: quarantine marker %s: %w", QuarantineFile, err)
	}
	return q, nil
}

// parseMarker decodes a marker. A marker that does not parse is an error,
// never "not quarantined": the replica must not resume on a damaged marker.
func parseMarker(b []byte) (*Quarantine, error) {
	var f markerFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.Version != markerVersion {
		return nil, fmt.Errorf("version %d: this build reads version %d", f.Version, markerVersion)
	}
	if f.Quarantine.Reason == "" {
		return nil, errors.New("no reason")
	}
	return &f.Quarantine, nil
}

// writeMarker persists q as the quarantine marker.
func writeMarker(dir string, q Quarantine) error {
	if err := datadir.WriteJSON(dir, QuarantineFile, markerFile{Version: markerVersion, Quarantine: q}); err != nil {
		return fmt.Errorf("replica: write quarantine marker: %w", err)
	}
	return nil
}

// ClearQuarantine removes the quarantine marker from a stopped replica's
// data directory, so that it catches up from its last good transaction when
// it starts again (what an operator's release does). Removing a marker that
// is not there is not an error.
func ClearQuarantine(dataDir string) error {
	if err := datadir.Remove(dataDir, QuarantineFile); err != nil {
		return fmt.Errorf("replica: clear quarantine: %w", err)
	}
	return nil
}
