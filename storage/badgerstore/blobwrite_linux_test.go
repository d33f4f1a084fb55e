package badgerstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// directSizes cross the alignment and chunk boundaries of direct writes.
var directSizes = []int{
	directAlign - 1, directAlign, directAlign + 1,
	directChunk - 1, directChunk, directChunk + 1,
	directWriters*directChunk + 3*directAlign + 17,
}

// Blob files written around the page cache hold exactly the data: no
// padding is left at the tail, whatever the size.
func TestWriteBlobFileDirect(t *testing.T) {
	s := openStore(t, blobConfig(t, t.TempDir()))
	for i, n := range directSizes {
		data := pattern(7, i, n)
		path := filepath.Join(t.TempDir(), "blob")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		err = s.writeDirect(f, data, directAlign)
		if errors.Is(err, errDirectRefused) {
			_ = f.Close()
			t.Skipf("this file system refuses O_DIRECT: %v", err)
		}
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		if err != nil || flags&unix.O_DIRECT == 0 {
			t.Fatalf("%d bytes: file flags %#x, %v: O_DIRECT is not set", n, flags, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes written, read back %d (%v) that differ", n, len(got), err)
		}
	}
}

// A refused direct write (here: an alignment no disk takes) leaves the file
// empty with O_DIRECT off, and the blob then goes through the page cache.
func TestWriteBlobFileRefused(t *testing.T) {
	s := openStore(t, blobConfig(t, t.TempDir()))
	data := pattern(8, 0, 3*directChunk+5)
	path := filepath.Join(t.TempDir(), "blob")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	switch err := s.writeDirect(f, data, 1000); {
	case err == nil:
		// tmpfs, for one, takes O_DIRECT writes of any alignment.
		t.Skip("this file system takes unaligned direct writes: nothing to refuse")
	case !errors.Is(err, errDirectRefused):
		t.Fatalf("direct write with 1000-byte alignment: %v, want %v", err, errDirectRefused)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		t.Fatalf("after a refused direct write the file has %v bytes (%v), want 0", fi.Size(), err)
	}
	if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || flags&unix.O_DIRECT != 0 {
		t.Fatalf("file flags %#x, %v: O_DIRECT is still set", flags, err)
	}
	if err := writeStartingWriteback(f, data, true); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v) that differ from the %d written", len(got), err, len(data))
	}

	// Once refused, the store does not try again.
	s.directRefused.Store(true)
	g, err := os.Create(filepath.Join(t.TempDir(), "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := s.writeBlobFile(g, data); err != nil {
		t.Fatal(err)
	}
	if flags, err := unix.FcntlInt(g.Fd(), unix.F_GETFL, 0); err != nil || flags&unix.O_DIRECT != 0 {
		t.Fatalf("file flags %#x, %v: a store that was refused wrote with O_DIRECT", flags, err)
	}
}
