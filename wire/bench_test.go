package wire_test

import (
	"math/rand/v2"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/repld/repld/wire"
)

// BenchmarkStore1MiB measures a 1 MiB store through the codec against a
// copy of 1 MiB in the same run: compare MB/s of the sub-benchmarks.
//
//	go test ./wire -run '^$' -bench Store1MiB -benchmem
func BenchmarkStore1MiB(b *testing.B) {
	const size = 1 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{}).Read(data)
	c := newCodec(b, wire.Config{})
	m := &wire.Store{Epoch: 3, Seq: 7, OID: 0x10, Serial: tid1, Data: data}
	enc, err := c.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("baseline-copy", func(b *testing.B) {
		dst := make([]byte, size)
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			copy(dst, data)
		}
	})
	b.Run("buffers+unmarshal", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.MarshalBuffers(m); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Unmarshal(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library-marshal+unmarshal", func(b *testing.B) {
		// The cbor library alone, which copies data on both sides: what
		// the head-and-payload design avoids.
		var out wire.Store
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			full, err := cbor.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			if err := cbor.Unmarshal(full, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSmall measures the small control messages, which dominate the
// message count.
func BenchmarkSmall(b *testing.B) {
	c := newCodec(b, wire.Config{})
	for _, s := range samples() {
		if s.name == "store" {
			continue
		}
		enc, err := c.Marshal(s.msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Marshal(s.msg); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Unmarshal(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
