package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/repld/repld/storage"
)

var (
	goldenPrev = storage.Checksum{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}
	goldenTID  = storage.TID(0x0123456789abcdef)
	goldenMeta = storage.TxnMeta{User: []byte("alice"), Description: []byte("test txn"), Extension: []byte{0, 1}}
)

func goldenRecords() []storage.RecordDigest {
	return []storage.RecordDigest{
		storage.DigestRecord(5, []byte("five")),
		storage.DigestRecord(1, nil),
		storage.DigestRecord(1<<40, []byte("big")),
	}
}

// goldenChain was computed by a separate implementation of the contract;
// a change here breaks every deployed chain.
const goldenChain = "3066bae79664322d57b42a0cb96e71299e8df1f003039bf9bf2b6ffc97ae17a8"

func TestNextChainGolden(t *testing.T) {
	// The contract's byte string, written out.
	var msg []byte
	msg = append(msg, goldenPrev[:]...)
	msg = append(msg, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef)
	msg = append(msg, 0, 0, 0, 5, 'a', 'l', 'i', 'c', 'e')
	msg = append(msg, 0, 0, 0, 8, 't', 'e', 's', 't', ' ', 't', 'x', 'n')
	msg = append(msg, 0, 0, 0, 2, 0, 1)
	for _, r := range []struct {
		oid  []byte
		data string
	}{ // ascending OID order
		{[]byte{0, 0, 0, 0, 0, 0, 0, 1}, ""},
		{[]byte{0, 0, 0, 0, 0, 0, 0, 5}, "five"},
		{[]byte{0, 0, 1, 0, 0, 0, 0, 0}, "big"},
	} {
		sum := sha256.Sum256([]byte(r.data))
		msg = append(msg, r.oid...)
		msg = append(msg, sum[:]...)
	}
	byHand := sha256.Sum256(msg)
	if hex.EncodeToString(byHand[:]) != goldenChain {
		t.Fatalf("hand-built chain %x disagrees with the golden value %s", byHand, goldenChain)
	}
	got := storage.NextChain(goldenPrev, goldenTID, goldenMeta, goldenRecords())
	if got.String() != goldenChain {
		t.Fatalf("NextChain = %s; want %s", got, goldenChain)
	}
}

func TestNextChainFirstTransaction(t *testing.T) {
	// Before the first transaction the chain is 32 zero bytes; an empty
	// transaction adds the TID and three zero lengths.
	msg := append(make([]byte, 32), 0, 0, 0, 0, 0, 0, 0, 1)
	msg = append(msg, make([]byte, 12)...)
	want := storage.Checksum(sha256.Sum256(msg))
	var zero storage.Checksum
	if !zero.IsZero() || want.IsZero() {
		t.Fatal("IsZero is wrong")
	}
	if got := storage.NextChain(zero, 1, storage.TxnMeta{}, nil); got != want {
		t.Fatalf("first empty transaction: %s; want %s", got, want)
	}
	// Nil and empty metadata are the same.
	empty := storage.TxnMeta{User: []byte{}, Description: []byte{}, Extension: []byte{}}
	if got := storage.NextChain(zero, 1, empty, []storage.RecordDigest{}); got != want {
		t.Fatalf("empty (not nil) metadata: %s; want %s", got, want)
	}
}

func TestNextChainRecordOrder(t *testing.T) {
	want := storage.NextChain(goldenPrev, goldenTID, goldenMeta, goldenRecords())
	recs := goldenRecords()
	for range 6 {
		// Each rotation, forwards and backwards.
		recs = append(recs[1:], recs[0])
		backwards := slices.Clone(recs)
		slices.Reverse(backwards)
		for _, order := range [][]storage.RecordDigest{recs, backwards} {
			if got := storage.NextChain(goldenPrev, goldenTID, goldenMeta, slices.Clone(order)); got != want {
				t.Fatalf("records in another order: %s; want %s", got, want)
			}
		}
	}
}

func TestNextChainEveryFieldCounts(t *testing.T) {
	base := storage.NextChain(goldenPrev, goldenTID, goldenMeta, goldenRecords())
	changed := map[string]func() storage.Checksum{
		"prev": func() storage.Checksum {
			p := goldenPrev
			p[31] ^= 1
			return storage.NextChain(p, goldenTID, goldenMeta, goldenRecords())
		},
		"tid": func() storage.Checksum {
			return storage.NextChain(goldenPrev, goldenTID+1, goldenMeta, goldenRecords())
		},
		"user": func() storage.Checksum {
			m := goldenMeta
			m.User = []byte("alicf")
			return storage.NextChain(goldenPrev, goldenTID, m, goldenRecords())
		},
		"description": func() storage.Checksum {
			m := goldenMeta
			m.Description = nil
			return storage.NextChain(goldenPrev, goldenTID, m, goldenRecords())
		},
		"extension": func() storage.Checksum {
			m := goldenMeta
			m.Extension = []byte{0, 2}
			return storage.NextChain(goldenPrev, goldenTID, m, goldenRecords())
		},
		"byte moved from user to description": func() storage.Checksum {
			m := goldenMeta
			m.User, m.Description = []byte("alic"), []byte("etest txn")
			return storage.NextChain(goldenPrev, goldenTID, m, goldenRecords())
		},
		"record OID": func() storage.Checksum {
			r := goldenRecords()
			r[0].OID = 6
			return storage.NextChain(goldenPrev, goldenTID, goldenMeta, r)
		},
		"record data": func() storage.Checksum {
			r := goldenRecords()
			r[0] = storage.DigestRecord(5, []byte("fivf"))
			return storage.NextChain(goldenPrev, goldenTID, goldenMeta, r)
		},
		"one record fewer": func() storage.Checksum {
			return storage.NextChain(goldenPrev, goldenTID, goldenMeta, goldenRecords()[1:])
		},
		"one record more": func() storage.Checksum {
			r := append(goldenRecords(), storage.DigestRecord(9, nil))
			return storage.NextChain(goldenPrev, goldenTID, goldenMeta, r)
		},
	}
	seen := map[storage.Checksum]string{base: "base"}
	for name, fn := range changed {
		got := fn()
		if other, dup := seen[got]; dup {
			t.Errorf("changing %s gives the same chain as %s", name, other)
		}
		seen[got] = name
	}
}

func TestDigestRecord(t *testing.T) {
	d := storage.DigestRecord(7, []byte("abc"))
	want, _ := hex.DecodeString("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	if d.OID != 7 || !bytes.Equal(d.DataSHA256[:], want) {
		t.Fatalf("DigestRecord = %v", d)
	}
}
