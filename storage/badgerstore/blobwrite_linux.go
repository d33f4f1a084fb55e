package badgerstore

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	// directAlign is the alignment O_DIRECT asks of buffers, offsets and
	// lengths: the disk's logical block size, which is at most 4096 on
	// the disks we support (a larger one refuses the writes, and the blob
	// is written through the page cache instead).
	directAlign = 4096
	// directChunk is how much of a blob one O_DIRECT write carries, and
	// directWriters how many such writes are in flight at once: the disk
	// works on several requests while the next chunk is copied.
	directChunk   = 1 << 20
	directWriters = 4
)

// errDirectRefused reports that the file system or the disk refused an
// O_DIRECT write; the caller then writes through the page cache.
var errDirectRefused = errors.New("direct write refused")

// writeBlobFile writes data to the new, empty file f. A blob written to be
// made durable goes around the page cache (O_DIRECT): it is written once
// and read rarely, and copying it into the page cache costs as much CPU as
// hashing it while leaving the disk idle until the sync, which then has
// the whole blob to write. Where O_DIRECT is refused, the blob goes
// through the page cache, each chunk's writeback started as it is
// written.
func (s *Store) writeBlobFile(f *os.File, data []byte) error {
	if !s.cfg.NoSync && len(data) >= directAlign && !s.directRefused.Load() {
		err := s.writeDirect(f, data, directAlign)
		if !errors.Is(err, errDirectRefused) {
			return err
		}
		// The blobs directory is on one file system: the next blob would
		// be refused too.
		if !s.directRefused.Swap(true) {
			s.log.Info("blob files are written through the page cache: the file system refused a direct write", zap.String("dir", s.blobDir), zap.Error(err))
		}
	}
	return writeStartingWriteback(f, data, !s.cfg.NoSync)
}

// writeDirect writes data to the new, empty file f with O_DIRECT, in
// chunks aligned to align bytes; the tail block's padding is cut off at
// the end. If O_DIRECT is refused it returns errDirectRefused with f
// empty again, its file offset at 0 and O_DIRECT off.
func (s *Store) writeDirect(f *os.File, data []byte, align int) error {
	fd := uintptr(f.Fd())
	flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", errDirectRefused, err)
	}
	if _, err := unix.FcntlInt(fd, unix.F_SETFL, flags|unix.O_DIRECT); err != nil {
		return fmt.Errorf("%w: %w", errDirectRefused, err)
	}
	// One extent for the whole file, not one per write; where that is
	// not supported the writes allocate as they go.
	_ = unix.Fallocate(int(fd), 0, 0, int64(len(data)))
	var (
		next   atomic.Int64 // offset of the next chunk to write
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		chunks = (len(data) + directChunk - 1) / directChunk
	)
	for range min(directWriters, chunks) {
		wg.Go(func() {
			buf := s.directBuffer(align)
			defer s.directBufs.Put(buf)
			for {
				off := int(next.Add(directChunk) - directChunk)
				if off >= len(data) {
					return
				}
				n := copy((*buf)[:directChunk], data[off:])
				w := (n + align - 1) / align * align
				clear((*buf)[n:w])
				if _, err := f.WriteAt((*buf)[:w], int64(off)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		// Refused (an alignment the disk does not take): start over.
		if _, ferr := unix.FcntlInt(fd, unix.F_SETFL, flags); ferr != nil {
			return fmt.Errorf("turn O_DIRECT off after a refused write: %w", ferr)
		}
		if terr := f.Truncate(0); terr != nil {
			return terr
		}
		return fmt.Errorf("%w: %w", errDirectRefused, err)
	}
	return f.Truncate(int64(len(data)))
}

// directBuffer returns a buffer that starts at a multiple of align and
// holds a chunk with its padding, recycled from earlier writes where it
// can be.
func (s *Store) directBuffer(align int) *[]byte {
	if b, ok := s.directBufs.Get().(*[]byte); ok && uintptr(unsafe.Pointer(&(*b)[0]))%uintptr(align) == 0 {
		return b
	}
	raw := make([]byte, directChunk+2*align)
	skip := (align - int(uintptr(unsafe.Pointer(&raw[0]))%uintptr(align))) % align
	b := raw[skip : skip+directChunk+align]
	return &b
}
