package remote_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/repld/repld/gcs/tcptransport/tlstest"
	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
)

// commitValue writes v to oid, retrying conflicts, and returns the TID.
func commitValue(t testing.TB, s storage.Storage, oid storage.OID, update func(old []byte) []byte) storage.TID {
	t.Helper()
	ctx := context.Background()
	for range 1000 {
		old, serial, err := s.Load(ctx, oid)
		if errors.Is(err, storage.ErrNotFound) {
			old, serial, err = nil, 0, nil
		}
		if err != nil {
			t.Fatalf("Load(%s): %v", oid, err)
		}
		txn, err := s.Begin(ctx, storage.TxnMeta{})
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		if err := txn.Store(ctx, oid, serial, update(old)); err != nil {
			t.Fatalf("Store: %v", err)
		}
		if err := txn.Vote(ctx); errors.Is(err, storage.ErrConflict) {
			continue
		} else if err != nil {
			t.Fatalf("Vote: %v", err)
		}
		c, err := txn.Finish(ctx)
		if err != nil {
			t.Fatalf("Finish: %v", err)
		}
		return c.TID
	}
	t.Fatalf("1000 conflicts in a row on %s", oid)
	return 0
}

func increment(old []byte) []byte {
	var n uint64
	if len(old) == 8 {
		n = binary.BigEndian.Uint64(old)
	}
	return binary.BigEndian.AppendUint64(nil, n+1)
}

func counter(t testing.TB, s storage.Storage, oid storage.OID) uint64 {
	t.Helper()
	data, _, err := s.Load(context.Background(), oid)
	if err != nil || len(data) != 8 {
		t.Fatalf("Load(%s) = %x, %v", oid, data, err)
	}
	return binary.BigEndian.Uint64(data)
}

// TestManyCallsOnOneConnection runs concurrent commits and reads through
// one client, so many calls are in flight on its one connection.
func TestManyCallsOnOneConnection(t *testing.T) {
	s := serve(t, "", clientserver.Config{Store: memStore(t)})
	c := open(t, remote.Config{Primary: []string{s.Addr().String()}, CacheObjects: -1})
	const workers, rounds = 16, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				commitValue(t, c, storage.OID(w%4), increment)
				if _, err := c.LastTransaction(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var total uint64
	for oid := range storage.OID(4) {
		total += counter(t, c, oid)
	}
	if total != workers*rounds {
		t.Fatalf("counters sum to %d, want %d", total, workers*rounds)
	}
	if st := c.Stats(); st.Calls < workers*rounds*4 {
		t.Fatalf("Stats.Calls = %d, want at least %d", st.Calls, workers*rounds*4)
	}
}

// TestInvalidationsKeepTheCacheCorrect has writers commit through one
// client while another client reads through its cache: the reader never
// sees a counter go back, and once it has heard of the last commit it
// reads the final values.
func TestInvalidationsKeepTheCacheCorrect(t *testing.T) {
	_, paddr, raddrs := clusterWithServers(t, 1)
	writer := open(t, remote.Config{Primary: []string{paddr}})
	reader := open(t, remote.Config{Primary: []string{paddr}, Replicas: raddrs})
	const oids, writers, rounds = 4, 4, 30
	for oid := range storage.OID(oids) {
		commitValue(t, writer, oid, increment)
	}
	var wg sync.WaitGroup
	var last atomic.Uint64
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				tid := commitValue(t, writer, storage.OID((w+i)%oids), increment)
				for cur := last.Load(); uint64(tid) > cur && !last.CompareAndSwap(cur, uint64(tid)); cur = last.Load() {
				}
			}
		})
	}
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Go(func() {
		seen := make([]uint64, oids)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for oid := range storage.OID(oids) {
				if v := counter(t, reader, oid); v < seen[oid] {
					t.Errorf("counter %s went back from %d to %d", oid, seen[oid], v)
					return
				} else {
					seen[oid] = v
				}
			}
		}
	})
	wg.Wait()
	close(stop)
	rwg.Wait()
	eventually(t, "the reader hears of the last commit", func() bool {
		return reader.Stats().LastSeen >= storage.TID(last.Load())
	})
	var total uint64
	for oid := range storage.OID(oids) {
		total += counter(t, reader, oid)
	}
	if want := uint64(oids + writers*rounds); total != want {
		t.Fatalf("reader sees counters summing to %d, want %d", total, want)
	}
	st := reader.Stats()
	if st.Invalidations == 0 || st.CacheHits == 0 {
		t.Fatalf("reader stats %+v: want invalidations and cache hits", st)
	}
}

// TestReconnect stops the server: calls fail with ErrDisconnected until it
// is back, then the client has reconnected by itself.
func TestReconnect(t *testing.T) {
	store := memStore(t)
	addr := freeAddr(t)
	s := serve(t, addr, clientserver.Config{Store: store})
	c := open(t, remote.Config{Primary: []string{addr}})
	commitValue(t, c, 1, increment)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a call to fail with ErrDisconnected", func() bool {
		_, err := c.LastTransaction(context.Background())
		return errors.Is(err, remote.ErrDisconnected)
	})
	if _, err := c.Begin(context.Background(), storage.TxnMeta{}); !errors.Is(err, remote.ErrDisconnected) {
		t.Fatalf("Begin while disconnected: %v; want ErrDisconnected", err)
	}
	if _, _, err := c.Load(context.Background(), 1); !errors.Is(err, remote.ErrDisconnected) {
		t.Fatalf("Load while disconnected (the cache was flushed): %v; want ErrDisconnected", err)
	}
	// Once a call has failed with ErrDisconnected, WaitConnected waits for
	// a new connection: here it can only end with its context.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := c.WaitConnected(done); err == nil {
		t.Fatal("WaitConnected succeeded while disconnected")
	}

	serve(t, addr, clientserver.Config{Store: store})
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	commitValue(t, c, 1, increment)
	if got := counter(t, c, 1); got != 2 {
		t.Fatalf("counter = %d after reconnecting, want 2", got)
	}
	if st := c.Stats(); st.Reconnects == 0 {
		t.Fatalf("Stats.Reconnects = 0 after a reconnection")
	}
}

// TestFailover gives the client two primary addresses: it uses the one
// that says it is the primary, and after that one goes away and the other
// is promoted, it finds the new one.
func TestFailover(t *testing.T) {
	var promoted atomic.Bool
	role := func() string {
		if promoted.Load() {
			return clientserver.RolePrimary
		}
		return clientserver.RoleReplica
	}
	a := serve(t, "", clientserver.Config{Store: memStore(t)})
	b := serve(t, "", clientserver.Config{Store: memStore(t), Role: role})
	c := open(t, remote.Config{Primary: []string{b.Addr().String(), a.Addr().String()}})
	commitValue(t, c, 1, increment)
	if _, _, err := b.Storage().Load(context.Background(), 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the commit reached the node that is not the primary: %v", err)
	}

	promoted.Store(true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a commit on the promoted node", func() bool {
		txn, err := c.Begin(context.Background(), storage.TxnMeta{})
		if err != nil {
			return false
		}
		defer txn.Abort(context.Background())
		return txn.Store(context.Background(), 2, 0, []byte("after failover")) == nil && txn.Vote(context.Background()) == nil && finishOK(txn)
	})
	if data, _, err := b.Storage().Load(context.Background(), 2); err != nil || string(data) != "after failover" {
		t.Fatalf("promoted node has %q, %v", data, err)
	}
}

func finishOK(txn storage.Txn) bool {
	_, err := txn.Finish(context.Background())
	return err == nil
}

// TestDroppedConnectionAbortsItsTransaction closes a client holding the
// commit lock: the node aborts its transaction, and another client
// commits.
func TestDroppedConnectionAbortsItsTransaction(t *testing.T) {
	s := serve(t, "", clientserver.Config{Store: memStore(t)})
	addr := []string{s.Addr().String()}
	a := open(t, remote.Config{Primary: addr})
	ctx := context.Background()
	txn, err := a.Begin(ctx, storage.TxnMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, 1, 0, []byte("never")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := open(t, remote.Config{Primary: addr})
	commitValue(t, b, 2, increment)
	if _, _, err := b.Load(ctx, 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load of the dropped transaction's object: %v; want ErrNotFound", err)
	}
}

// TestErrorsKeepTheirKind checks that errors.Is and errors.As work on
// errors the node reported.
func TestErrorsKeepTheirKind(t *testing.T) {
	_, paddr, raddrs := clusterWithServers(t, 1)
	c := open(t, remote.Config{Primary: []string{paddr}})
	ro := open(t, remote.Config{Primary: raddrs, AnyRole: true})
	ctx := context.Background()
	tid := commitValue(t, c, 1, increment)

	txn, _ := c.Begin(ctx, storage.TxnMeta{})
	_ = txn.Store(ctx, 1, tid-1, []byte("stale"))
	err := txn.Vote(ctx)
	var ce *storage.ConflictError
	if !errors.As(err, &ce) || ce.OID != 1 || ce.Expected != tid-1 || ce.Actual != tid {
		t.Fatalf("Vote of a stale store: %v; want a ConflictError{1, %s, %s}", err, tid-1, tid)
	}
	if _, _, err := c.Load(ctx, 99); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load of a missing object: %v", err)
	}
	if _, err := ro.Begin(ctx, storage.TxnMeta{}); !errors.Is(err, storage.ErrReadOnly) {
		t.Fatalf("Begin on a replica: %v", err)
	}
	txn, _ = c.Begin(ctx, storage.TxnMeta{})
	_ = txn.Vote(ctx)
	if _, err := txn.FinishAt(ctx, tid, storage.Checksum{}); !errors.Is(err, storage.ErrTIDOrder) {
		t.Fatalf("FinishAt an old TID: %v", err)
	}
	if _, err := txn.FinishAt(ctx, tid+1, storage.Checksum{1}); !errors.Is(err, storage.ErrChainMismatch) {
		t.Fatalf("FinishAt with a wrong chain: %v", err)
	}
	if err := txn.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 65<<20)
	txn, _ = c.Begin(ctx, storage.TxnMeta{})
	if err := txn.Store(ctx, 5, 0, big); err != nil {
		t.Fatalf("Store of a too large object: %v; want the error from Vote", err)
	}
	if err := txn.Vote(ctx); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Vote after a too large store: %v", err)
	}
	_ = c.Close()
	if _, _, err := c.Load(ctx, 1); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
}

// TestTLS serves the client port with mutual TLS.
func TestTLS(t *testing.T) {
	ca, err := tlstest.NewCA("repld test CA")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue("127.0.0.1", x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue("app", x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, "", clientserver.Config{Store: memStore(t), TLS: &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{server.TLS},
		ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert,
	}})
	c := open(t, remote.Config{Primary: []string{s.Addr().String()}, TLS: &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{client.TLS}, RootCAs: ca.Pool(),
	}})
	commitValue(t, c, 1, increment)
	if got := counter(t, c, 1); got != 1 {
		t.Fatalf("counter = %d over TLS", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if _, err := remote.Open(ctx, remote.Config{Primary: []string{s.Addr().String()}, TLS: &tls.Config{RootCAs: ca.Pool()}}); err == nil {
		t.Fatal("a client without a certificate connected")
	}
}
