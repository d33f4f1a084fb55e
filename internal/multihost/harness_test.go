package multihost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
)

// The ports every node listens on inside its container, on every
// interface: each container is a host of its own, so they never collide.
const (
	gcsPort    = "7000"
	clientPort = "7002"
	adminPort  = "7080"
)

// failureTimeout is every node's --failure-timeout: a lost host is
// noticed within about twice that (the silent link closes, then the
// member is removed), not the default's six seconds.
const failureTimeout = "1s"

// Bounds of the harness's waits and requests.
const (
	// startTimeout bounds a node's start until its admin endpoint answers.
	startTimeout = 30 * time.Second
	// waitTimeout bounds waiting for the cluster to reach a state:
	// replicas becoming healthy, catching up, failures being detected.
	waitTimeout = 30 * time.Second
	// httpTimeout bounds one admin request.
	httpTimeout = 5 * time.Second
	// commitTimeout bounds one transaction, above the primary's default
	// sync timeout (10s), so that a commit that cannot be replicated
	// reports it instead of timing out here.
	commitTimeout = 15 * time.Second
	// pollInterval is how often waits look again.
	pollInterval = 50 * time.Millisecond
)

// cluster is one test's Docker network and the nodes on it.
type cluster struct {
	t       *testing.T
	s       *suite
	prefix  string // of the network's and the containers' names
	network string
	http    *http.Client
	nodes   []*node
}

// newCluster creates a bridge network for t; t's cleanup removes it and
// every container started on it, after printing their logs if t failed.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	s := theSuite
	s.require(t)
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("repld-mh-%s-%s", s.runID, hex.EncodeToString(id))
	c := &cluster{
		t: t, s: s, prefix: prefix, network: prefix + "-net",
		// No keep-alive: a connection kept to a node that is paused or cut
		// off would outlive the test's view of it.
		http: &http.Client{Timeout: httpTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	if _, err := docker(t.Context(), dockerTimeout, "network", "create", "--driver", "bridge", "--label", runLabel+"="+s.runID, c.network); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	return c
}

// cleanup prints the containers' logs if the test failed, then removes the
// containers and the network. It runs after the test's context ended, so
// its commands have their own.
func (c *cluster) cleanup() {
	ctx := context.Background()
	if c.t.Failed() {
		for _, n := range c.nodes {
			c.t.Logf("log of %s (container %s):\n%s", n.name, n.container, n.logs(ctx))
		}
	}
	var names []string
	for _, n := range c.nodes {
		if n.paused {
			// Removing a paused container is refused by some engines.
			_, _ = docker(ctx, dockerTimeout, "unpause", n.container)
		}
		names = append(names, n.container)
	}
	if len(names) > 0 {
		if _, err := docker(ctx, dockerTimeout, append([]string{"rm", "--force", "--volumes"}, names...)...); err != nil && !strings.Contains(err.Error(), "No such container") {
			c.t.Errorf("remove containers: %v", err)
		}
	}
	if _, err := docker(ctx, dockerTimeout, "network", "rm", c.network); err != nil {
		c.t.Errorf("remove network: %v", err)
	}
	c.http.CloseIdleConnections()
}

// node is one repld process in a container of its own.
type node struct {
	c         *cluster
	name      string // the node's --name
	container string // the container's name, also its host name on the network
	ip        string // its address on the test's network
	paused    bool
}

// startPrimary starts a primary in applied mode with k = 1: a commit
// returns once one replica committed it durably.
func (c *cluster) startPrimary(name string) *node {
	c.t.Helper()
	return c.start(name, "primary", "--name", name, "--sync", "applied", "--sync-replicas", "1", "--heartbeat", "100ms")
}

// startReplica starts a replica that finds the primary by its container
// name, through the network's name service.
func (c *cluster) startReplica(name string, prim *node) *node {
	c.t.Helper()
	return c.start(name, "replica", "--name", name, "--primary", net.JoinHostPort(prim.container, gcsPort))
}

// start runs repld with args plus the flags every node shares, and waits
// until its admin endpoint answers.
func (c *cluster) start(name string, args ...string) *node {
	c.t.Helper()
	n := &node{c: c, name: name, container: c.prefix + "-" + name}
	// Recorded before docker run, so that cleanup removes a container
	// created by a run that failed later.
	c.nodes = append(c.nodes, n)
	run := []string{"run", "--detach", "--name", n.container, "--network", c.network,
		"--label", runLabel + "=" + c.s.runID, c.s.image}
	run = append(run, args...)
	run = append(run, "--data", "/data", "--log-format", "json", "--failure-timeout", failureTimeout,
		"--listen", "0.0.0.0:"+gcsPort, "--client", "0.0.0.0:"+clientPort, "--admin", "0.0.0.0:"+adminPort)
	if _, err := docker(c.t.Context(), dockerTimeout, run...); err != nil {
		c.t.Fatal(err)
	}
	n.inspectIP()
	deadline := time.Now().Add(startTimeout)
	for i := 0; ; i++ {
		if _, err := n.status(); err == nil {
			return n
		} else if time.Now().After(deadline) {
			c.t.Fatalf("%s did not answer on its admin port within %v: %v", name, startTimeout, err)
		}
		// A node that exits at once (a bad flag, an unusable data
		// directory) fails the test now rather than at the deadline.
		if i%20 == 19 {
			if state, err := docker(c.t.Context(), dockerTimeout, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", n.container); err != nil || !strings.HasPrefix(state, "running") {
				c.t.Fatalf("%s is not running: %q %v", name, state, err)
			}
		}
		time.Sleep(pollInterval)
	}
}

// inspectIP reads the node's address on the test's network.
func (n *node) inspectIP() {
	n.c.t.Helper()
	format := fmt.Sprintf(`{{with index .NetworkSettings.Networks %q}}{{.IPAddress}}{{end}}`, n.c.network)
	ip, err := docker(n.c.t.Context(), dockerTimeout, "inspect", "--format", format, n.container)
	if err != nil {
		n.c.t.Fatal(err)
	}
	if net.ParseIP(ip) == nil {
		n.c.t.Fatalf("%s has no address on network %s (docker inspect says %q)", n.name, n.c.network, ip)
	}
	n.ip = ip
}

// adminAddr and clientAddr are the node's admin and client ports as the
// test process reaches them.
func (n *node) adminAddr() string  { return net.JoinHostPort(n.ip, adminPort) }
func (n *node) clientAddr() string { return net.JoinHostPort(n.ip, clientPort) }

// dockerOp runs a docker command on the node's container, failing the
// test if it fails.
func (n *node) dockerOp(args ...string) {
	n.c.t.Helper()
	if _, err := docker(n.c.t.Context(), dockerTimeout, args...); err != nil {
		n.c.t.Fatal(err)
	}
}

// kill ends the node's host at once (SIGKILL to its only process).
func (n *node) kill() { n.c.t.Helper(); n.dockerOp("kill", n.container) }

// pause freezes the node's host: its process stops running while its
// kernel side (open connections, buffers) stays.
func (n *node) pause() {
	n.c.t.Helper()
	n.dockerOp("pause", n.container)
	n.paused = true
}

// unpause lets a paused node run again.
func (n *node) unpause() {
	n.c.t.Helper()
	n.dockerOp("unpause", n.container)
	n.paused = false
}

// disconnect cuts the node off the test's network: it keeps running with
// no route to any other node, nor to the test process.
func (n *node) disconnect() {
	n.c.t.Helper()
	n.dockerOp("network", "disconnect", n.c.network, n.container)
}

// connect attaches the node to the test's network again; it may get
// another address, which the node then uses.
func (n *node) connect() {
	n.c.t.Helper()
	n.dockerOp("network", "connect", n.c.network, n.container)
	n.inspectIP()
}

// logs returns the tail of the node's log, or why it cannot.
func (n *node) logs(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", "--tail", "150", n.container).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(docker logs: %v) %s", err, out)
	}
	return string(out)
}

// nodeStatus is the part of a node's /status the tests read: a primary's
// sync policy and replica registry, a replica's own state.
type nodeStatus struct {
	Name     string                  `json:"name"`
	Role     string                  `json:"role"`
	Epoch    uint64                  `json:"epoch"`
	LastTID  storage.TID             `json:"last_tid"`
	State    string                  `json:"state"`
	Sync     primary.SyncStatus      `json:"sync"`
	Replicas []primary.ReplicaStatus `json:"replicas"`
}

// replica returns the primary's registry entry of the replica name.
func (s nodeStatus) replica(name string) primary.ReplicaStatus {
	for _, r := range s.Replicas {
		if r.Name == name {
			return r
		}
	}
	return primary.ReplicaStatus{Name: name, State: "unknown to the primary"}
}

// get GETs path on the node's admin port and decodes the JSON answer into
// out; it returns the HTTP status code (0 when there was no answer).
func (n *node) get(path string, out any) (int, error) {
	ctx, cancel := context.WithTimeout(n.c.t.Context(), httpTimeout)
	defer cancel()
	url := "http://" + n.adminAddr() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := n.c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: GET %s: %w", n.name, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, fmt.Errorf("%s: GET %s: %s: %s", n.name, path, resp.Status, e.Error)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s: GET %s: decode: %w", n.name, path, err)
	}
	return resp.StatusCode, nil
}

// status reads the node's /status.
func (n *node) status() (nodeStatus, error) {
	var st nodeStatus
	_, err := n.get("/status", &st)
	return st, err
}

// mustStatus reads the node's /status, failing the test if it cannot.
func (n *node) mustStatus() nodeStatus {
	n.c.t.Helper()
	st, err := n.status()
	if err != nil {
		n.c.t.Fatal(err)
	}
	return st
}

// chainAt reads the node's chain value at tid (/chain?tid=).
func (n *node) chainAt(tid storage.TID) (admin.ChainResponse, error) {
	var ch admin.ChainResponse
	_, err := n.get("/chain?tid="+tid.String(), &ch)
	return ch, err
}

// waitUntil polls cond until it holds, failing the test after timeout
// with what it waited for and what cond last saw.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v until %s; last seen: %s", timeout, what, saw)
		}
		time.Sleep(pollInterval)
	}
}

// waitReplicaState waits until the primary's registry has replica in
// state.
func (c *cluster) waitReplicaState(prim *node, replica, state string) {
	c.t.Helper()
	waitUntil(c.t, fmt.Sprintf("%s reports replica %s %s", prim.name, replica, state), waitTimeout, func() (bool, string) {
		st, err := prim.status()
		if err != nil {
			return false, err.Error()
		}
		r := st.replica(replica)
		return r.State == state, fmt.Sprintf("%+v", r)
	})
}

// waitCaughtUp waits until the primary's registry has every replica
// healthy with the primary's last transaction applied, and until each
// replica's chain value at that transaction is the primary's; it returns
// that transaction's TID.
func (c *cluster) waitCaughtUp(prim *node, replicas ...*node) storage.TID {
	c.t.Helper()
	var last storage.TID
	waitUntil(c.t, fmt.Sprintf("%s reports every replica healthy at its last TID", prim.name), waitTimeout, func() (bool, string) {
		st, err := prim.status()
		if err != nil {
			return false, err.Error()
		}
		last = st.LastTID
		for _, r := range replicas {
			rs := st.replica(r.name)
			if rs.State != primary.StateHealthy.String() || rs.LastAppliedTID != st.LastTID {
				return false, fmt.Sprintf("primary at %s, %+v", st.LastTID, rs)
			}
		}
		return true, ""
	})
	want, err := prim.chainAt(last)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, r := range replicas {
		// The primary counts a transaction applied once the replica said
		// so; its admin endpoint may answer a moment later.
		waitUntil(c.t, fmt.Sprintf("%s has the chain value of %s at %s", r.name, prim.name, last), waitTimeout, func() (bool, string) {
			got, err := r.chainAt(last)
			if err != nil {
				return false, err.Error()
			}
			if got != want {
				c.t.Fatalf("%s: chain at %s is %s, %s has %s", r.name, last, got.Chain, prim.name, want.Chain)
			}
			return true, ""
		})
	}
	return last
}

// openClient opens a network client that t's cleanup closes. Its cache is
// off, so every read reaches a node.
func openClient(t *testing.T, cfg remote.Config) *remote.Client {
	t.Helper()
	cfg.CacheObjects = -1
	cfg.CallTimeout = commitTimeout
	cfg.DialTimeout = 2 * time.Second
	cfg.BackoffMax = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	c, err := remote.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close client: %v", err)
		}
	})
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// record is one object revision of an acknowledged commit.
type record struct {
	oid  storage.OID
	tid  storage.TID
	data []byte
}

// writer commits transactions of new objects through a client and keeps
// what was acknowledged. Its methods are safe for concurrent use.
type writer struct {
	client storage.Storage
	tag    string // in every object's data, naming the test

	mu      sync.Mutex // guards the fields below
	n       int        // transactions begun
	records []record
	last    storage.Commit // the acknowledged commit with the highest TID
	acked   int
}

func newWriter(client storage.Storage, tag string) *writer {
	return &writer{client: client, tag: tag}
}

// payload is the data of object j of transaction i: recognisable text
// repeated to size bytes.
func payload(tag string, i, j, size int) []byte {
	head := fmt.Sprintf("%s: transaction %d, object %d; ", tag, i, j)
	return bytes.Repeat([]byte(head), size/len(head)+1)[:size]
}

// commit writes one transaction of new objects, one of sizes[j] bytes
// each, and records it once the commit returned without error.
func (w *writer) commit(ctx context.Context, sizes ...int) (storage.Commit, error) {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	w.mu.Lock()
	i := w.n
	w.n++
	w.mu.Unlock()
	recs := make([]record, len(sizes))
	for j, size := range sizes {
		oid, err := w.client.NewOID(ctx)
		if err != nil {
			return storage.Commit{}, fmt.Errorf("transaction %d: new oid: %w", i, err)
		}
		recs[j] = record{oid: oid, data: payload(w.tag, i, j, size)}
	}
	txn, err := w.client.Begin(ctx, storage.TxnMeta{Description: fmt.Appendf(nil, "%s %d", w.tag, i)})
	if err != nil {
		return storage.Commit{}, fmt.Errorf("transaction %d: begin: %w", i, err)
	}
	for _, r := range recs {
		if err := txn.Store(ctx, r.oid, 0, r.data); err != nil {
			_ = txn.Abort(ctx)
			return storage.Commit{}, fmt.Errorf("transaction %d: store: %w", i, err)
		}
	}
	commit, err := storage.CommitTxn(ctx, txn)
	if err != nil {
		return storage.Commit{}, fmt.Errorf("transaction %d: commit: %w", i, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for j := range recs {
		recs[j].tid = commit.TID
	}
	w.records = append(w.records, recs...)
	w.acked++
	if commit.TID > w.last.TID {
		w.last = commit
	}
	return commit, nil
}

// mustCommit commits n transactions of objects of the given sizes, failing
// t at the first error.
func (w *writer) mustCommit(t *testing.T, n int, sizes ...int) {
	t.Helper()
	for range n {
		if _, err := w.commit(t.Context(), sizes...); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot returns the acknowledged records, how many commits were
// acknowledged and the last of them.
func (w *writer) snapshot() ([]record, int, storage.Commit) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]record(nil), w.records...), w.acked, w.last
}

// background commits transactions of objects of the given sizes in a
// goroutine, one every gap, until it is stopped or a commit fails (at most
// maxTxns); stop ends it and returns the first error.
func (w *writer) background(ctx context.Context, gap time.Duration, maxTxns int, sizes ...int) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		for range maxTxns {
			if _, err := w.commit(ctx, sizes...); err != nil {
				if ctx.Err() != nil {
					err = nil // stopped in the middle of a transaction
				}
				done <- err
				return
			}
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-time.After(gap):
			}
		}
		done <- nil
	}()
	return func() error {
		cancel()
		return <-done
	}
}

// verify loads every record's revision from s (the newest before the
// next TID) and checks its serial and data; it returns how many it read.
func verify(ctx context.Context, s storage.Storage, recs []record) (int, error) {
	var errs []error
	for _, r := range recs {
		data, start, _, err := s.LoadBefore(ctx, r.oid, r.tid+1)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("oid %s at %s: %w", r.oid, r.tid, err))
		case start != r.tid:
			errs = append(errs, fmt.Errorf("oid %s: revision before %s written by %s, want %s", r.oid, r.tid+1, start, r.tid))
		case !bytes.Equal(data, r.data):
			errs = append(errs, fmt.Errorf("oid %s at %s: %d bytes differ from the %d committed", r.oid, r.tid, len(data), len(r.data)))
		}
		if len(errs) >= 5 {
			errs = append(errs, errors.New("(stopped after 5 differences)"))
			break
		}
	}
	return len(recs), errors.Join(errs...)
}
