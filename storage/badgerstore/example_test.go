package badgerstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "badgerstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := badgerstore.Open(ctx, badgerstore.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	oid, err := s.NewOID(ctx)
	if err != nil {
		log.Fatal(err)
	}
	txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte("alice"), Description: []byte("first")})
	if err != nil {
		log.Fatal(err)
	}
	if err := txn.Store(ctx, oid, 0, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	if err := txn.Vote(ctx); err != nil {
		log.Fatal(err)
	}
	commit, err := txn.Finish(ctx)
	if err != nil {
		log.Fatal(err)
	}
	data, serial, err := s.Load(ctx, oid)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, written by the commit: %v\n", data, serial == commit.TID)
	// Output: hello, written by the commit: true
}
