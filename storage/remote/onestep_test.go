package remote_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
)

// oneStep begins a transaction on c that stores data as oid's revision
// after serial, and returns it as a OneStepCommitter.
func oneStep(t *testing.T, c *remote.Client, oid storage.OID, serial storage.TID, data []byte) (storage.Txn, storage.OneStepCommitter) {
	t.Helper()
	ctx := context.Background()
	txn, err := c.Begin(ctx, storage.TxnMeta{Description: []byte("one step")})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, oid, serial, data); err != nil {
		t.Fatal(err)
	}
	osc, ok := txn.(storage.OneStepCommitter)
	if !ok {
		t.Fatalf("%T does not implement storage.OneStepCommitter", txn)
	}
	return txn, osc
}

// TestVoteAndFinish commits in one round trip, then has a conflict end
// its transaction without holding the commit lock.
func TestVoteAndFinish(t *testing.T) {
	store := memStore(t)
	s := serve(t, "", clientserver.Config{Store: store})
	c := open(t, remote.Config{Primary: []string{s.Addr().String()}, CacheObjects: -1})
	ctx := context.Background()

	_, osc := oneStep(t, c, 1, 0, []byte("first"))
	calls := c.Stats().Calls
	cm, err := osc.VoteAndFinish(ctx)
	if err != nil {
		t.Fatalf("VoteAndFinish: %v", err)
	}
	if n := c.Stats().Calls - calls; n != 1 {
		t.Fatalf("VoteAndFinish made %d calls, want 1 round trip", n)
	}
	if last, err := store.LastTransaction(ctx); err != nil || last != cm.TID {
		t.Fatalf("node's last TID = %s, %v; the commit says %s", last, err, cm.TID)
	}
	if chain, err := store.Chain(ctx, cm.TID); err != nil || chain != cm.Chain {
		t.Fatalf("node's chain at %s = %x, %v; the commit says %x", cm.TID, chain, err, cm.Chain)
	}
	if data, serial, err := c.Load(ctx, 1); err != nil || string(data) != "first" || serial != cm.TID {
		t.Fatalf("Load(1) = %q, %s, %v; want \"first\" at %s", data, serial, err, cm.TID)
	}

	txn, osc := oneStep(t, c, 1, 0, []byte("stale"))
	got, err := osc.VoteAndFinish(ctx)
	var ce *storage.ConflictError
	if !errors.As(err, &ce) || ce.OID != 1 || ce.Expected != 0 || ce.Actual != cm.TID {
		t.Fatalf("VoteAndFinish of a stale store: %v; want ConflictError{1, 0, %s}", err, cm.TID)
	}
	if got != (storage.Commit{}) {
		t.Fatalf("a conflict returned Commit %+v; want the zero Commit", got)
	}
	if err := txn.Vote(ctx); !errors.Is(err, storage.ErrTxnState) {
		t.Fatalf("Vote after a failed VoteAndFinish: %v; want ErrTxnState", err)
	}
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort after a failed VoteAndFinish: %v", err)
	}
	if data, _, err := c.Load(ctx, 1); err != nil || string(data) != "first" {
		t.Fatalf("Load(1) after the conflict = %q, %v; want \"first\"", data, err)
	}

	// The node released the commit lock: the next commits go through,
	// from this client and from another.
	_, osc = oneStep(t, c, 1, cm.TID, []byte("second"))
	next, err := osc.VoteAndFinish(ctx)
	if err != nil || next.TID <= cm.TID {
		t.Fatalf("VoteAndFinish after a conflict = %+v, %v; want a commit after %s", next, err, cm.TID)
	}
	other := open(t, remote.Config{Primary: []string{s.Addr().String()}})
	commitValue(t, other, 2, increment)
}

// TestVoteAndFinishState checks the calls VoteAndFinish refuses, and that
// it reports a store the client could not send, as Vote does.
func TestVoteAndFinishState(t *testing.T) {
	s := serve(t, "", clientserver.Config{Store: memStore(t)})
	c := open(t, remote.Config{Primary: []string{s.Addr().String()}})
	ctx := context.Background()

	txn, osc := oneStep(t, c, 1, 0, []byte("x"))
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := osc.VoteAndFinish(ctx); !errors.Is(err, storage.ErrTxnState) {
		t.Fatalf("VoteAndFinish after Vote: %v; want ErrTxnState", err)
	}
	cm, err := txn.Finish(ctx)
	if err != nil {
		t.Fatalf("Finish after a refused VoteAndFinish (still voted): %v", err)
	}
	if _, err := osc.VoteAndFinish(ctx); !errors.Is(err, storage.ErrTxnState) {
		t.Fatalf("VoteAndFinish after Finish: %v; want ErrTxnState", err)
	}

	txn, osc = oneStep(t, c, 1, cm.TID, []byte("y"))
	if err := txn.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := osc.VoteAndFinish(ctx); !errors.Is(err, storage.ErrTxnState) {
		t.Fatalf("VoteAndFinish after Abort: %v; want ErrTxnState", err)
	}

	txn, osc = oneStep(t, c, 2, 0, make([]byte, 65<<20))
	if _, err := osc.VoteAndFinish(ctx); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("VoteAndFinish after a too large store: %v; want ErrTooLarge", err)
	}
	if err := txn.Vote(ctx); !errors.Is(err, storage.ErrTxnState) {
		t.Fatalf("Vote after a failed VoteAndFinish: %v; want ErrTxnState", err)
	}
	if _, err := storage.CommitTxn(ctx, commitBegun(t, c, 2)); err != nil {
		t.Fatalf("a commit after the refused transaction: %v", err)
	}
	if _, _, err := c.Load(ctx, 2); err != nil {
		t.Fatal(err)
	}

	_ = c.Close()
	if _, err := osc.VoteAndFinish(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("VoteAndFinish on a closed client: %v; want ErrClosed", err)
	}
}

// commitBegun begins a transaction on c that creates oid.
func commitBegun(t *testing.T, c *remote.Client, oid storage.OID) storage.Txn {
	t.Helper()
	txn, _ := oneStep(t, c, oid, 0, []byte("new"))
	return txn
}

// TestVoteAndFinishDisconnect loses the connection while the node is
// voting: the call fails with the retryable ErrDisconnected.
func TestVoteAndFinishDisconnect(t *testing.T) {
	store := &stallingStore{Storage: memStore(t), voting: make(chan struct{})}
	s := serve(t, "", clientserver.Config{Store: store})
	c := open(t, remote.Config{Primary: []string{s.Addr().String()}})
	_, osc := oneStep(t, c, 1, 0, []byte("x"))
	var err error
	var wg sync.WaitGroup
	wg.Go(func() { _, err = osc.VoteAndFinish(context.Background()) })
	<-store.voting
	if cerr := s.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	wg.Wait()
	if !errors.Is(err, remote.ErrDisconnected) {
		t.Fatalf("VoteAndFinish on a lost connection: %v; want ErrDisconnected", err)
	}
	if _, _, err := store.Storage.Load(context.Background(), 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the lost transaction's object: %v; want ErrNotFound", err)
	}
}

// stallingStore is a store whose first vote waits until its context ends,
// after closing voting.
type stallingStore struct {
	storage.Storage
	voting chan struct{}
	once   sync.Once
}

// Begin implements storage.Storage.
func (s *stallingStore) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	txn, err := s.Storage.Begin(ctx, meta)
	if err != nil {
		return nil, err
	}
	return &stallingTxn{Txn: txn, s: s}, nil
}

type stallingTxn struct {
	storage.Txn
	s *stallingStore
}

// Vote implements storage.Txn.
func (t *stallingTxn) Vote(ctx context.Context) error {
	stall := false
	t.s.once.Do(func() { stall = true })
	if !stall {
		return t.Txn.Vote(ctx)
	}
	close(t.s.voting)
	<-ctx.Done()
	_ = t.Txn.Abort(context.WithoutCancel(ctx))
	return ctx.Err()
}
