package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/cluster"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/storage/faultstore"
)

// waitBound bounds every wait of the tests.
const waitBound = 30 * time.Second

// testNode is a Node with its gcs node, admin server and the fault
// wrapper of its current store.
type testNode struct {
	t    *testing.T
	name string
	dir  string
	gcs  *gcs.Node
	N    *Node
	srv  *admin.Server
	done chan error

	mu    sync.Mutex
	fault *faultstore.Store
}

// startNode starts a node in role on dir (created if needed), following
// primaryAddr as a replica, with its admin server. t's cleanup stops it.
func startNode(t *testing.T, name, dir string, role Role, primaryAddr string, sync primary.SyncPolicy) *testNode {
	t.Helper()
	tn := &testNode{t: t, name: name, dir: dir}
	tc := tcptransport.DefaultConfig()
	tc.Address = "127.0.0.1:0"
	layer, err := tcptransport.Listen(tc)
	if err != nil {
		t.Fatal(err)
	}
	gc := gcs.DefaultConfig(name)
	gc.HeartbeatInterval = 20 * time.Millisecond
	gc.FailureTimeout = 500 * time.Millisecond
	gc.ReconnectMin = 5 * time.Millisecond
	gc.ReconnectMax = 50 * time.Millisecond
	tn.gcs, err = gcs.NewNode(gc, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Name: name, DataDir: dir, GCS: tn.gcs,
		OpenStore:   func(ctx context.Context) (storage.Storage, error) { return openTestStore(ctx, tn) },
		RemoveStore: func() error { return os.RemoveAll(filepath.Join(dir, "store")) },
		Primary:     primary.Config{Sync: sync, HeartbeatInterval: 50 * time.Millisecond},
		Logger:      zap.NewNop(),
	}
	cfg.Replica.Primary = primaryAddr
	cfg.Replica.JoinBackoffMin, cfg.Replica.JoinBackoffMax = 5*time.Millisecond, 100*time.Millisecond
	tn.N, err = Open(context.Background(), cfg, role)
	if err != nil {
		tn.gcs.Close()
		t.Fatalf("open node %s: %v", name, err)
	}
	tn.srv, err = admin.Listen(admin.Config{
		Addr: "127.0.0.1:0", Status: tn.N.Status, Health: tn.N.Health, CurrentStore: tn.N.Store, Control: tn.N,
	})
	if err != nil {
		t.Fatal(err)
	}
	tn.done = make(chan error, 1)
	go func() { tn.done <- tn.srv.Serve() }()
	t.Cleanup(tn.stop)
	return tn
}

// openTestStore opens tn's badgerstore wrapped in a fresh fault store.
func openTestStore(ctx context.Context, tn *testNode) (storage.Storage, error) {
	s, err := badgerstore.Open(ctx, badgerstore.Config{Dir: filepath.Join(tn.dir, "store"), NoSync: true})
	if err != nil {
		return nil, err
	}
	f := faultstore.New(s)
	tn.mu.Lock()
	tn.fault = f
	tn.mu.Unlock()
	return f, nil
}

// stop stops the admin server, the node and its gcs node; twice is fine.
func (tn *testNode) stop() {
	if tn.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if err := tn.srv.Shutdown(ctx); err != nil {
		tn.t.Errorf("admin shutdown of %s: %v", tn.name, err)
	}
	if err := <-tn.done; err != nil {
		tn.t.Errorf("admin of %s: %v", tn.name, err)
	}
	if err := tn.N.Close(); err != nil {
		tn.t.Errorf("close %s: %v", tn.name, err)
	}
	tn.gcs.Close()
	tn.srv = nil
}

// gcsAddr is the node's gcs listen address.
func (tn *testNode) gcsAddr() string { return tn.gcs.Addr().String() }

// faults returns the fault wrapper of the node's current store.
func (tn *testNode) faults() *faultstore.Store {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.fault
}

// post POSTs body (JSON, or nothing when nil) to path on the node's admin
// server and returns the status code and decoded answer.
func (tn *testNode) post(path string, body any) (int, map[string]any) {
	tn.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tn.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+tn.srv.Addr().String()+path, rd)
	if err != nil {
		tn.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tn.t.Fatalf("POST %s to %s: %v", path, tn.name, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		tn.t.Fatalf("POST %s to %s: decode answer: %v", path, tn.name, err)
	}
	return resp.StatusCode, out
}

// mustPost is post expecting 200.
func (tn *testNode) mustPost(path string, body any) map[string]any {
	tn.t.Helper()
	code, out := tn.post(path, body)
	if code != http.StatusOK {
		tn.t.Fatalf("POST %s to %s: %d %v", path, tn.name, code, out)
	}
	return out
}

// waitFor polls cond until it returns nil, failing after waitBound.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, waitBound, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// registryState returns the primary's registry entry of replica name.
func registryState(p *primary.Primary, name string) primary.ReplicaStatus {
	for _, r := range p.Status().Replicas {
		if r.Name == name {
			return r
		}
	}
	return primary.ReplicaStatus{Name: name, State: "unknown"}
}

// waitState waits until the primary's registry shows replica name in
// state.
func waitState(t *testing.T, pn *testNode, name string, state primary.State) primary.ReplicaStatus {
	t.Helper()
	var st primary.ReplicaStatus
	waitFor(t, fmt.Sprintf("%s %s on the primary", name, state), func() error {
		p := pn.N.Primary()
		if p == nil {
			return errors.New("no primary")
		}
		st = registryState(p, name)
		if st.State != state.String() {
			return fmt.Errorf("state %s (%+v)", st.State, st.Quarantine)
		}
		return nil
	})
	return st
}

// waitEqual waits until the replica node rn holds exactly the primary's
// history and state.
func waitEqual(t *testing.T, pn, rn *testNode) {
	t.Helper()
	ctx := context.Background()
	p := pn.N.Primary()
	last, err := p.LastTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, rn.name+" caught up", func() error {
		r := rn.N.Replica()
		if r == nil {
			return errors.New("not a replica")
		}
		s := r.Status()
		if s.LastTID < last {
			return fmt.Errorf("%s at %s of %s (%s)", rn.name, s.LastTID, last, s.State)
		}
		return nil
	})
	if err := cluster.Equal(ctx, p, rn.N.Store()); err != nil {
		t.Fatalf("%s differs from the primary: %v", rn.name, err)
	}
}

// commit commits one transaction of n new objects through p.
func commit(ctx context.Context, p *primary.Primary, label string, n int) (storage.Commit, error) {
	txn, err := p.Begin(ctx, storage.TxnMeta{User: []byte("test"), Description: []byte(label)})
	if err != nil {
		return storage.Commit{}, err
	}
	for i := range n {
		oid, err := p.NewOID(ctx)
		if err == nil {
			err = txn.Store(ctx, oid, 0, fmt.Appendf(nil, "%s object %d", label, i))
		}
		if err != nil {
			_ = txn.Abort(ctx)
			return storage.Commit{}, err
		}
	}
	if err := txn.Vote(ctx); err != nil {
		_ = txn.Abort(ctx)
		return storage.Commit{}, err
	}
	return txn.Finish(ctx)
}

// mustCommit commits count transactions and fails the test on an error.
func mustCommit(t *testing.T, pn *testNode, label string, count int) {
	t.Helper()
	for i := range count {
		if _, err := commit(context.Background(), pn.N.Primary(), fmt.Sprintf("%s %d", label, i), 3); err != nil {
			t.Fatalf("commit %s %d: %v", label, i, err)
		}
	}
}
