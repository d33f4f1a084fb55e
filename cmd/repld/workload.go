package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
)

// Limits of one POST /debug/commit, so a typo cannot fill the disk.
const (
	maxWorkloadTxns = 10000
	maxWorkloadSize = 64 << 20
)

// workloadResult says what commitObjects did.
type workloadResult struct {
	Committed int `json:"committed"`
	// NotReplicated counts commits that are durable on the primary but
	// were not acknowledged by enough replicas in time.
	NotReplicated int            `json:"not_replicated"`
	Last          storage.Commit `json:"-"`
	LastTID       string         `json:"last_tid"`
	LastChain     string         `json:"last_chain"`
}

// commitObjects commits n transactions through s, each writing one new
// object of size bytes of pseudo-random data (seeded by its OID, so reruns
// write the same bytes). A commit that returns primary.ErrNotReplicated is
// durable and counts as committed; any other error stops the workload.
func commitObjects(ctx context.Context, s storage.Storage, n, size int) (workloadResult, error) {
	var res workloadResult
	for range n {
		c, err := commitObject(ctx, s, size)
		if err != nil && !errors.Is(err, primary.ErrNotReplicated) {
			return res, fmt.Errorf("commit %d of %d: %w", res.Committed+1, n, err)
		}
		if err != nil {
			res.NotReplicated++
		}
		res.Committed++
		res.Last = c
		res.LastTID, res.LastChain = c.TID.String(), c.Chain.String()
	}
	return res, nil
}

func commitObject(ctx context.Context, s storage.Storage, size int) (storage.Commit, error) {
	oid, err := s.NewOID(ctx)
	if err != nil {
		return storage.Commit{}, err
	}
	data := make([]byte, size)
	var seed [32]byte
	b := oid.Bytes()
	copy(seed[:], b[:])
	_, _ = rand.NewChaCha8(seed).Read(data)
	txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte("repld-workload"), Description: []byte("object " + oid.String())})
	if err != nil {
		return storage.Commit{}, err
	}
	if err := txn.Store(ctx, oid, 0, data); err != nil {
		_ = txn.Abort(ctx)
		return storage.Commit{}, err
	}
	if err := txn.Vote(ctx); err != nil {
		_ = txn.Abort(ctx)
		return storage.Commit{}, err
	}
	return txn.Finish(ctx)
}

// workloadHandlers serves POST /debug/commit?txns=N&size=B, a testing aid
// (the primary has no client protocol yet): it commits N transactions of one
// B-byte object each through the replicating store and answers with a
// workloadResult. The request must finish within the admin server's write
// timeout.
func workloadHandlers(s storage.Storage, log *zap.Logger) map[string]http.Handler {
	return map[string]http.Handler{
		"POST /debug/commit": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			txns, err := intParam(r, "txns", 1, 1, maxWorkloadTxns)
			if err != nil {
				admin.WriteError(w, http.StatusBadRequest, err)
				return
			}
			size, err := intParam(r, "size", 100, 0, maxWorkloadSize)
			if err != nil {
				admin.WriteError(w, http.StatusBadRequest, err)
				return
			}
			res, err := commitObjects(r.Context(), s, txns, size)
			if err != nil {
				log.Warn("debug workload failed", zap.Int("committed", res.Committed), zap.Error(err))
				admin.WriteError(w, http.StatusInternalServerError, fmt.Errorf("after %d commits: %w", res.Committed, err))
				return
			}
			admin.WriteJSON(w, http.StatusOK, res)
		}),
	}
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	q := r.URL.Query().Get(name)
	if q == "" {
		return def, nil
	}
	v, err := strconv.Atoi(q)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", name, q, lo, hi)
	}
	return v, nil
}
