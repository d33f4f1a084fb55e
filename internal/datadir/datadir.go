// Package datadir owns the small files a node keeps in its data directory
// beside its store: atomic replacement of a file, and the epoch file that
// primaries and replicas share (a promoted replica keeps its epoch file).
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// EpochFile holds a node's epoch as decimal text and a newline.
const EpochFile = "epoch"

// WriteFile replaces dir/name with data: a temporary file, fsync, rename,
// fsync of the directory, so a crash leaves the old or the new content,
// never a mix.
func WriteFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

// WriteJSON replaces dir/name with v as indented JSON and a final newline,
// atomically as WriteFile does.
func WriteJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return WriteFile(dir, name, append(b, '\n'))
}

// Remove removes dir/name durably; a missing file is not an error.
func Remove(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadEpoch returns the epoch persisted in dir, or 0 if there is none.
func ReadEpoch(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, EpochFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read epoch: %w", err)
	}
	e, err := ParseEpoch(b)
	if err != nil {
		return 0, fmt.Errorf("epoch file %s: %w", filepath.Join(dir, EpochFile), err)
	}
	return e, nil
}

// ParseEpoch decodes an epoch file: a positive decimal number and a
// newline. A missing newline means a truncated write.
func ParseEpoch(b []byte) (uint64, error) {
	s, ok := strings.CutSuffix(string(b), "\n")
	if !ok {
		return 0, fmt.Errorf("holds %q: no final newline (truncated write?)", b)
	}
	e, err := strconv.ParseUint(s, 10, 64)
	if err != nil || e == 0 {
		return 0, fmt.Errorf("holds %q: want a positive decimal number", s)
	}
	return e, nil
}

// WriteEpoch persists epoch in dir, replacing any epoch there.
func WriteEpoch(dir string, epoch uint64) error {
	if epoch == 0 {
		return errors.New("write epoch 0: epochs start at 1")
	}
	if err := WriteFile(dir, EpochFile, []byte(strconv.FormatUint(epoch, 10)+"\n")); err != nil {
		return fmt.Errorf("write epoch: %w", err)
	}
	return nil
}
