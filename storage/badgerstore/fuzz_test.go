package badgerstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/repld/repld/storage"
)

// The decoders read bytes from disk: any input gives a value or an error
// wrapping ErrCorrupt, never a panic, and what decodes re-encodes to the
// same bytes.

func FuzzDecodeTxnRecord(f *testing.F) {
	f.Add(encodeTxnRecord(txnRecord{}))
	f.Add(encodeTxnRecord(txnRecord{Chain: storage.Checksum{1, 2, 3}, Meta: storage.TxnMeta{User: []byte("u"), Description: []byte("d"), Extension: []byte{0, 1}}}))
	f.Add([]byte{})
	f.Add(append(make([]byte, 32), 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeTxnRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if got := encodeTxnRecord(r); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, want %x", got, b)
		}
	})
}

func FuzzDecodeOIDs(f *testing.F) {
	f.Add(encodeOIDs(nil))
	f.Add(encodeOIDs([]storage.OID{0, 1, 1 << 40}))
	f.Add(encodeOIDs([]storage.OID{2, 1}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		oids, err := decodeOIDs(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if got := encodeOIDs(oids); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, want %x", got, b)
		}
	})
}

func FuzzDecodeIntent(f *testing.F) {
	f.Add(encodeIntent(7, storage.Checksum{9}))
	f.Add(encodeUint64(1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, decode := range []func([]byte) ([]byte, error){
			func(b []byte) ([]byte, error) {
				nonce, chain, err := decodeIntent(b)
				return encodeIntent(nonce, chain), err
			},
			func(b []byte) ([]byte, error) {
				v, err := decodeUint64(b, "counter")
				return encodeUint64(v), err
			},
		} {
			checkReencodes(t, b, decode)
		}
	})
}

func FuzzDecodeBlobRef(f *testing.F) {
	f.Add(encodeBlobRef(blobRef{id: 0x0123456789abcdef, size: 16 << 20, sum: [32]byte{1, 2, 3}}))
	f.Add(encodeBlobIndex(7, 0x03f0000000000001))
	f.Add(encodeBlobRef(blobRef{size: 1 << 63}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, decode := range []func([]byte) ([]byte, error){
			func(b []byte) ([]byte, error) {
				r, err := decodeBlobRef(b)
				return encodeBlobRef(r), err
			},
			func(b []byte) ([]byte, error) {
				oid, tid, err := decodeBlobIndex(b)
				return encodeBlobIndex(oid, tid), err
			},
		} {
			checkReencodes(t, b, decode)
		}
	})
}

// checkReencodes checks that decode either refuses b with ErrCorrupt or
// returns b's exact re-encoding.
func checkReencodes(t *testing.T, b []byte, decode func([]byte) ([]byte, error)) {
	t.Helper()
	got, err := decode(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		return
	}
	if !bytes.Equal(got, b) {
		t.Fatalf("re-encoded %x, want %x", got, b)
	}
}
