package datadir

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestEpochRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if e, err := ReadEpoch(dir); err != nil || e != 0 {
		t.Fatalf("ReadEpoch of an empty dir = %d, %v; want 0, nil", e, err)
	}
	if err := WriteEpoch(dir, 0); err == nil {
		t.Fatal("WriteEpoch(0) succeeded")
	}
	for _, want := range []uint64{1, 7, 1<<64 - 1} {
		if err := WriteEpoch(dir, want); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadEpoch(dir); err != nil || got != want {
			t.Fatalf("ReadEpoch = %d, %v; want %d", got, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, EpochFile), []byte("3"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEpoch(dir); err == nil {
		t.Fatal("a truncated epoch file was accepted")
	}
}

func TestWriteFileReplacesAndRemoves(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{"one", "two"} {
		if err := WriteFile(dir, "f", []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != content {
			t.Fatalf("content = %q, %v; want %q", b, err, content)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("dir holds %v, %v; want only the file (no temporaries)", entries, err)
	}
	if err := Remove(dir, "f"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, "f"); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "missing"), "f", nil); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

// FuzzParseEpoch: the epoch file comes from disk.
func FuzzParseEpoch(f *testing.F) {
	for _, s := range []string{"1\n", "18446744073709551615\n", "0\n", "-1\n", " 7 \n", "3", "x\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEpoch(b)
		if err != nil {
			return
		}
		if e == 0 {
			t.Fatal("epoch 0 accepted")
		}
		if again, err := ParseEpoch(fmt.Appendf(nil, "%d\n", e)); err != nil || again != e {
			t.Fatalf("epoch %d from %q does not round-trip: %d, %v", e, b, again, err)
		}
	})
}
