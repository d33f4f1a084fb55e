package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/memstore"
)

func TestTransactions(t *testing.T) {
	ctx := context.Background()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var tids []storage.TID
	for i := range 5 {
		txn, err := s.Begin(ctx, storage.TxnMeta{})
		if err != nil {
			t.Fatal(err)
		}
		var serial storage.TID
		if i > 0 {
			serial = tids[i-1]
		}
		if err := txn.Store(ctx, 1, serial, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if err := txn.Vote(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := txn.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tids = append(tids, c.TID)
	}

	var got []storage.TID
	for txn, err := range storage.Transactions(ctx, s, tids[1], tids[3]) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, txn.TID)
	}
	if len(got) != 3 || got[0] != tids[1] || got[2] != tids[3] {
		t.Fatalf("range %s..%s gave %v, want %v", tids[1], tids[3], got, tids[1:4])
	}

	n := 0
	for range storage.Transactions(ctx, s, 0, 0) {
		if n++; n == 2 {
			break // stopping early must close the iterator without a panic
		}
	}

	f := faultstore.New(s)
	f.FailNext(faultstore.OpNext, errors.New("disk"), 1)
	errs := 0
	for txn, err := range storage.Transactions(ctx, f, 0, 0) {
		if err == nil {
			t.Fatalf("got transaction %s before the injected failure", txn.TID)
		}
		if !errors.Is(err, faultstore.ErrInjected) {
			t.Fatalf("err = %v, want the injected failure", err)
		}
		errs++
	}
	if errs != 1 {
		t.Fatalf("the failure was yielded %d times, want once", errs)
	}
}
