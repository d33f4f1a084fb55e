package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/repld/repld/storage"
)

// commitObj commits one object in one transaction with user name u.
func commitObj(ctx context.Context, s storage.Storage, oid storage.OID, serial storage.TID, data []byte) (storage.Commit, error) {
	txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte("test"), Description: fmt.Appendf(nil, "oid %d", oid)})
	if err != nil {
		return storage.Commit{}, err
	}
	if err := txn.Store(ctx, oid, serial, data); err != nil {
		_ = txn.Abort(ctx)
		return storage.Commit{}, err
	}
	if err := txn.Vote(ctx); err != nil {
		return storage.Commit{}, err
	}
	return txn.Finish(ctx)
}

// mustCommit commits or fails the test.
func mustCommit(t *testing.T, s storage.Storage, oid storage.OID, serial storage.TID, data []byte) storage.Commit {
	t.Helper()
	c, err := commitObj(t.Context(), s, oid, serial, data)
	if err != nil {
		t.Fatalf("commit of %s: %v", oid, err)
	}
	return c
}

// names returns the names of rs.
func names(rs ...*Replica) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}
