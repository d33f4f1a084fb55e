//go:build !linux

package badgerstore

import "os"

// writeBlobFile writes data to the new, empty file f through the page
// cache, starting each chunk's writeback as it is written where the
// platform can.
func (s *Store) writeBlobFile(f *os.File, data []byte) error {
	return writeStartingWriteback(f, data, !s.cfg.NoSync)
}
