package cluster

import (
	"strings"
	"testing"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
)

func TestEqual(t *testing.T) {
	open := func() storage.Storage {
		s, err := memstore.New(memstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	for i := range 3 {
		tx := storage.Transaction{TID: storage.TID(100 + i), Meta: storage.TxnMeta{User: []byte("u")},
			Records: []storage.Record{{OID: 1, Data: []byte{byte(i)}}}}
		restore(t, a, tx)
		if i == 2 {
			tx.Records[0].Data = []byte("other")
		}
		restore(t, b, tx)
	}
	if err := Equal(t.Context(), a, a); err != nil {
		t.Fatalf("a store differs from itself: %v", err)
	}
	err := Equal(t.Context(), a, b)
	if err == nil || !strings.Contains(err.Error(), storage.TID(102).String()) {
		t.Fatalf("Equal of stores differing at %s = %v", storage.TID(102), err)
	}
	c := open()
	restore(t, c, storage.Transaction{TID: 100, Meta: storage.TxnMeta{User: []byte("u")}, Records: []storage.Record{{OID: 1, Data: []byte{0}}}})
	if err := Equal(t.Context(), a, c); err == nil || !strings.Contains(err.Error(), "only the first") {
		t.Fatalf("Equal of a store and its prefix = %v", err)
	}
}
