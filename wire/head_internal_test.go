package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestHeadBoundaries checks appendHead against the cbor library and
// readHead against appendHead at every change of head size.
func TestHeadBoundaries(t *testing.T) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		head := appendHead(nil, majorUint, n)
		want, err := em.Marshal(n)
		if err != nil || !bytes.Equal(head, want) {
			t.Fatalf("appendHead(%d) = %x, library %x (%v)", n, head, want, err)
		}
		for _, major := range []byte{majorUint, majorBytes, majorText, majorArray} {
			b := appendHead([]byte{0xff}, major, n)
			gotMajor, got, next, err := readHead(b, 1)
			if err != nil || gotMajor != major || got != n || next != len(b) {
				t.Fatalf("readHead(appendHead(%d, %d)) = %d, %d, %d, %v", major, n, gotMajor, got, next, err)
			}
		}
	}
	for _, b := range [][]byte{{0x18, 23}, {0x19, 0, 0xff}, {0x1a, 0, 0, 0xff, 0xff}, {0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}} {
		if _, _, _, err := readHead(b, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("readHead(%x) = %v, want ErrMalformed for a non-shortest head", b, err)
		}
	}
}
