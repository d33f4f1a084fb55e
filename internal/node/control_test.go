package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
)

// startPair starts a primary and one replica r1, healthy.
func startPair(t *testing.T, sync primary.SyncPolicy) (pn, rn *testNode) {
	t.Helper()
	dir := t.TempDir()
	pn = startNode(t, "primary", filepath.Join(dir, "primary"), RolePrimary, "", sync)
	rn = startNode(t, "r1", filepath.Join(dir, "r1"), RoleReplica, pn.gcsAddr(), primary.SyncPolicy{})
	waitState(t, pn, "r1", primary.StateHealthy)
	return pn, rn
}

func TestOperatorQuarantineAndRelease(t *testing.T) {
	pn, rn := startPair(t, primary.SyncPolicy{})
	mustCommit(t, pn, "before", 5)
	waitEqual(t, pn, rn)

	out := rn.mustPost("/quarantine", map[string]string{"reason": "disk check"})
	if out["action"] != "quarantine" {
		t.Fatalf("answer %v", out)
	}
	st := waitState(t, pn, "r1", primary.StateQuarantined)
	if rs := rn.N.Replica().Status(); rs.State != replica.StateQuarantined || rs.Quarantine.Code != replica.CodeOperator {
		t.Fatalf("replica status %+v", rs)
	}
	t.Logf("primary recorded: %+v", st.Quarantine)
	if err := rn.N.Health(); err == nil {
		t.Fatal("a quarantined replica reports healthy")
	}
	// The primary keeps committing; the quarantined replica applies
	// nothing.
	mustCommit(t, pn, "during", 5)
	before := rn.N.Replica().Status().LastTID

	// Releasing on the replica alone leaves the primary's record: the
	// replica is judged quarantined at hello.
	rn.mustPost("/release", nil)
	waitState(t, pn, "r1", primary.StateQuarantined)
	if rn.N.Replica().Status().Quarantine != nil {
		t.Fatal("marker survived release")
	}

	pn.mustPost("/replicas/r1/release", nil)
	rn.mustPost("/release", nil)
	waitState(t, pn, "r1", primary.StateHealthy)
	waitEqual(t, pn, rn)
	if after := rn.N.Replica().Status().LastTID; after <= before {
		t.Fatalf("released replica did not catch up: %s <= %s", after, before)
	}
}

func TestPrimaryQuarantineReplica(t *testing.T) {
	pn, rn := startPair(t, primary.SyncPolicy{})
	mustCommit(t, pn, "before", 2)
	pn.mustPost("/replicas/r1/quarantine", map[string]string{"reason": "maintenance"})
	st := waitState(t, pn, "r1", primary.StateQuarantined)
	if st.Quarantine.Code != primary.CodeOperator {
		t.Fatalf("quarantine %+v", st.Quarantine)
	}
	// The replica restarting is still refused: the record persists.
	rn.mustPost("/release", nil)
	waitState(t, pn, "r1", primary.StateQuarantined)
	pn.mustPost("/replicas/r1/release", nil)
	rn.mustPost("/release", nil)
	waitState(t, pn, "r1", primary.StateHealthy)
	mustCommit(t, pn, "after", 2)
	waitEqual(t, pn, rn)
}

func TestReleaseAfterStorageFailure(t *testing.T) {
	pn, rn := startPair(t, primary.SyncPolicy{})
	mustCommit(t, pn, "before", 3)
	waitEqual(t, pn, rn)
	rn.faults().FailAlways(faultstore.OpFinishAt, errors.New("injected: disk full"))
	mustCommit(t, pn, "failing", 3)
	waitState(t, pn, "r1", primary.StateQuarantined)
	waitFor(t, "r1 quarantined itself", func() error {
		if rn.N.Replica().Status().State != replica.StateQuarantined {
			return errors.New("not yet")
		}
		return nil
	})
	mustCommit(t, pn, "while quarantined", 3)

	pn.mustPost("/replicas/r1/release", nil)
	rn.mustPost("/release", nil) // the reopened store has no fault
	waitState(t, pn, "r1", primary.StateHealthy)
	waitEqual(t, pn, rn)
}

func TestResyncDivergentReplica(t *testing.T) {
	pn, rn := startPair(t, primary.SyncPolicy{})
	mustCommit(t, pn, "shared", 4)
	waitEqual(t, pn, rn)

	// r1 commits a transaction of its own while stopped: at its next
	// hello the primary finds a TID it does not have.
	dir := rn.dir
	rn.stop()
	extraCommit(t, dir)
	mustCommit(t, pn, "after", 4)
	rn = startNode(t, "r1", dir, RoleReplica, pn.gcsAddr(), primary.SyncPolicy{})
	st := waitState(t, pn, "r1", primary.StateQuarantined)
	if st.Quarantine.Code != primary.CodeDivergent {
		t.Fatalf("quarantine %+v", st.Quarantine)
	}

	// Release does not help a divergent replica: it is judged again.
	pn.mustPost("/replicas/r1/release", nil)
	rn.mustPost("/release", nil)
	waitState(t, pn, "r1", primary.StateQuarantined)

	pn.mustPost("/replicas/r1/release", nil)
	out := rn.mustPost("/resync", nil)
	if out["action"] != "resync" {
		t.Fatalf("answer %v", out)
	}
	waitState(t, pn, "r1", primary.StateHealthy)
	waitEqual(t, pn, rn)
}

// extraCommit commits a transaction to the stopped node's store in dir.
func extraCommit(t *testing.T, dir string) storage.Commit {
	t.Helper()
	ctx := context.Background()
	tn := &testNode{t: t, dir: dir}
	s, err := openTestStore(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte("rogue"), Description: []byte("extra")})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, 1<<40, 0, []byte("only here")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	cm, err := txn.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func TestControlRefusals(t *testing.T) {
	pn, rn := startPair(t, primary.SyncPolicy{})
	for _, c := range []struct {
		n    *testNode
		path string
		body any
		code int
	}{
		{pn, "/promote", nil, http.StatusConflict},
		{pn, "/quarantine", map[string]string{"reason": "x"}, http.StatusConflict},
		{pn, "/resync", nil, http.StatusConflict},
		{pn, "/replicas/nobody/release", nil, http.StatusNotFound},
		{rn, "/replicas/r1/release", nil, http.StatusConflict},
		{rn, "/quarantine", map[string]string{"reason": " "}, http.StatusBadRequest},
		{rn, "/quarantine", map[string]string{"why": "x"}, http.StatusBadRequest},
		{rn, "/follow", map[string]string{"primary": "nohostport"}, http.StatusConflict},
	} {
		code, out := c.n.post(c.path, c.body)
		if code != c.code || out["error"] == nil {
			t.Errorf("POST %s to %s: %d %v, want %d with an error", c.path, c.n.name, code, out, c.code)
		}
	}
	// A quarantined replica cannot be promoted.
	rn.mustPost("/quarantine", map[string]string{"reason": "test"})
	if code, out := rn.post("/promote", nil); code != http.StatusConflict {
		t.Fatalf("promote of a quarantined replica: %d %v", code, out)
	}
}

func TestReplicaStatusCatchUp(t *testing.T) {
	s := replicaStatus(replica.Status{State: replica.StateCatchingUp, LastTID: 5, PrimaryLastTID: 9})
	if s.CatchUp == nil || *s.CatchUp != (CatchUp{DoneTID: 5, TargetTID: 9}) {
		t.Fatalf("catch-up %+v", s.CatchUp)
	}
	if s := replicaStatus(replica.Status{State: replica.StateLive}); s.CatchUp != nil {
		t.Fatalf("live replica shows catch-up %+v", s.CatchUp)
	}
}

func TestPromoteAndFollow(t *testing.T) {
	dir := t.TempDir()
	sync := primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: waitBound}
	pn := startNode(t, "primary", filepath.Join(dir, "primary"), RolePrimary, "", sync)
	r1 := startNode(t, "r1", filepath.Join(dir, "r1"), RoleReplica, pn.gcsAddr(), sync)
	r2 := startNode(t, "r2", filepath.Join(dir, "r2"), RoleReplica, pn.gcsAddr(), sync)
	waitState(t, pn, "r1", primary.StateHealthy)
	waitState(t, pn, "r2", primary.StateHealthy)

	// A workload runs until the primary goes away; every commit whose
	// Finish returned without error was applied by a replica.
	p := pn.N.Primary()
	var acked []storage.TID
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100000 {
			cm, err := commit(context.Background(), p, "workload", 2)
			if err != nil {
				return
			}
			acked = append(acked, cm.TID)
			_ = i
		}
	}()
	waitFor(t, "workload under way", func() error {
		if p.Status().Counters.Commits < 50 {
			return errors.New("fewer than 50 commits")
		}
		return nil
	})
	pn.stop() // the primary crashes with the workload running
	<-done
	if len(acked) == 0 {
		t.Fatal("no commit acknowledged")
	}

	// The replica that applied the most becomes the primary.
	newP, other := r1, r2
	if r2.N.Replica().Status().LastTID > r1.N.Replica().Status().LastTID {
		newP, other = r2, r1
	}
	out := newP.mustPost("/promote", nil)
	if out["action"] != "promote" || out["listen"] != newP.gcsAddr() {
		t.Fatalf("answer %v", out)
	}
	np := newP.N.Primary()
	if np == nil || np.Epoch() != 2 {
		t.Fatalf("promoted node: primary %v", np)
	}
	ctx := context.Background()
	for _, tid := range acked {
		if _, err := np.Chain(ctx, tid); err != nil {
			t.Fatalf("acknowledged transaction %s lost by the promotion: %v", tid, err)
		}
	}
	t.Logf("%d acknowledged transactions kept; last %s", len(acked), acked[len(acked)-1])

	other.mustPost("/follow", map[string]string{"primary": newP.gcsAddr()})
	waitState(t, newP, other.name, primary.StateHealthy)
	mustCommit(t, newP, "new primary", 5)
	waitEqual(t, newP, other)
	if e := other.N.Replica().Status().Epoch; e != 2 {
		t.Fatalf("follower epoch %d, want 2", e)
	}

	// The old primary comes back as a replica of the new one holding a
	// transaction the new primary lacks: it is quarantined as divergent.
	extra := extraCommit(t, pn.dir)
	old := startNode(t, "primary", pn.dir, RoleReplica, newP.gcsAddr(), primary.SyncPolicy{})
	st := waitState(t, newP, "primary", primary.StateQuarantined)
	if st.Quarantine.Code != primary.CodeDivergent || st.Quarantine.TID != extra.TID {
		t.Fatalf("old primary's quarantine %+v, want divergent at %s", st.Quarantine, extra.TID)
	}
	// Resynced, it is an equal replica of the new primary.
	newP.mustPost("/replicas/primary/release", nil)
	old.mustPost("/resync", nil)
	waitState(t, newP, "primary", primary.StateHealthy)
	waitEqual(t, newP, old)
}

func TestOldEpochRefused(t *testing.T) {
	// A replica that follows a primary of epoch 2 refuses the old
	// primary's epoch-1 stream when pointed back at it.
	dir := t.TempDir()
	pn, rn := startPair(t, primary.SyncPolicy{})
	mustCommit(t, pn, "shared", 2)
	waitEqual(t, pn, rn)
	r2 := startNode(t, "r2", filepath.Join(dir, "r2"), RoleReplica, pn.gcsAddr(), primary.SyncPolicy{})
	waitEqual(t, pn, r2)
	rn.mustPost("/promote", nil)
	r2.mustPost("/follow", map[string]string{"primary": rn.gcsAddr()})
	waitState(t, rn, "r2", primary.StateHealthy)
	// The new primary counts r2 healthy when it sends live; r2 has seen
	// epoch 2 only once it applied that message.
	waitFor(t, "r2 at epoch 2", func() error {
		r := r2.N.Replica()
		if r == nil {
			return errors.New("not a replica")
		}
		if e := r.Status().Epoch; e != 2 {
			return fmt.Errorf("epoch %d", e)
		}
		return nil
	})
	r2.mustPost("/follow", map[string]string{"primary": pn.gcsAddr()})
	st := waitState(t, pn, "r2", primary.StateQuarantined)
	if st.Quarantine.Code != primary.CodeNewerEpoch {
		t.Fatalf("quarantine %+v, want %s", st.Quarantine, primary.CodeNewerEpoch)
	}
}
