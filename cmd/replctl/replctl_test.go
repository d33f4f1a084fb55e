package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repld/repld/storage"
)

// testTimeout bounds every replctl run in the tests.
const testTimeout = 20 * time.Second

// trio is a primary and two replicas with the same 10 transactions.
func trio(t *testing.T) (p, r1, r2 *fakeNode) {
	p, r1, r2 = newFake(t, "primary", "primary"), newFake(t, "r1", "replica"), newFake(t, "r2", "replica")
	history(10, 5, p, r1, r2)
	p.st.Replicas = []RegistryEntry{{Name: "r1", State: "healthy"}, {Name: "r2", State: "healthy", LagTransactions: 2}}
	return p, r1, r2
}

func TestStatus(t *testing.T) {
	p, r1, r2 := trio(t)
	r2.st.State, r2.st.Quarantine = "quarantined", &Quarantine{Reason: "disk full"}
	r := replctl(t, nil, nodesArg(p, r1, r2), "status")
	wantCode(t, r, 0)
	for _, want := range []string{"NAME", "primary", "serving", "r1", "live", "r2", "disk full", tidN(10).String(),
		"3 nodes; 1 primary; 1 live, 0 catching up, 1 quarantined"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, r.stdout)
		}
	}
	rep := decode[statusReport](t, replctl(t, nil, nodesArg(p, r1, r2), "status", "--json"))
	if len(rep.Nodes) != 3 || rep.Nodes[2].State != "quarantined" || rep.Nodes[2].QuarantineReason != "disk full" {
		t.Fatalf("status --json nodes = %+v", rep.Nodes)
	}
	if lag := rep.Nodes[2].LagTransactions; lag == nil || *lag != 2 {
		t.Errorf("r2 lag_transactions = %v, want 2 from the primary's registry", lag)
	}
	if rep.Summary.Quarantined != 1 || rep.Summary.PrimaryLastTID != tidN(10) {
		t.Errorf("summary = %+v", rep.Summary)
	}
}

func TestStatusUnreachableNode(t *testing.T) {
	p, r1, _ := trio(t)
	dead := newFake(t, "dead", "replica")
	dead.srv.Close()
	r := replctl(t, nil, nodesArg(p, r1, dead), "status")
	wantCode(t, r, exitError)
	if !strings.Contains(r.stdout, "unreachable") || !strings.Contains(r.stderr, dead.addr()) {
		t.Fatalf("unreachable node not reported with its address:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
}

func TestNodesFromEnvironment(t *testing.T) {
	p, r1, _ := trio(t)
	r := replctl(t, map[string]string{nodesEnv: p.addr() + "," + r1.addr()}, "status", "--json")
	wantCode(t, r, 0)
	if n := len(decode[statusReport](t, r).Nodes); n != 2 {
		t.Fatalf("%d nodes, want the 2 from %s", n, nodesEnv)
	}
}

func TestUsageErrors(t *testing.T) {
	p, _, _ := trio(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, "no nodes"},
		{[]string{"--nodes", "nocolon", "status"}, "not HOST:PORT"},
		{[]string{nodesArg(p), "diff", "primary"}, "two nodes"},
		{[]string{nodesArg(p), "status", "--bogus"}, "unknown flag"},
		{[]string{nodesArg(p), "diff", "primary", "nosuch"}, `"nosuch"`},
		{[]string{nodesArg(p), "quarantine", "primary"}, "--reason is required"},
		{[]string{nodesArg(p), "frobnicate"}, "unknown command"},
	} {
		r := replctl(t, nil, tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("replctl %q: code %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	r := replctl(t, nil, "--help")
	wantCode(t, r, 0)
	for _, want := range []string{"0  ok", "1  inconsistency found", "2  usage or connection error", "REPLCTL_NODES"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	wantCode(t, replctl(t, nil, "completion", "bash"), 0)
	r = replctl(t, nil, "__complete", "--nodes", "127.0.0.1:1", "diff", "")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "127.0.0.1:1") {
		t.Errorf("completion of diff's nodes:\n%s", r.stdout)
	}
}

func TestVerifyConsistent(t *testing.T) {
	p, r1, r2 := trio(t)
	r := replctl(t, nil, nodesArg(p, r1, r2), "verify")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "consistent: 3 nodes agree") {
		t.Fatalf("verify output:\n%s", r.stdout)
	}
	rep := decode[VerifyReport](t, replctl(t, nil, nodesArg(p, r1, r2), "verify", "--json"))
	if !rep.Consistent || rep.CommonTID != tidN(10) || rep.State.Objects != 51 || len(rep.Disagreeing) != 0 {
		t.Fatalf("verify --json = %+v", rep)
	}
}

// A lagging replica is not an inconsistency: the nodes agree up to the
// TID they all have.
func TestVerifyLaggingReplicaIsConsistent(t *testing.T) {
	p, r1, r2 := trio(t)
	p.commit(tidN(11), "alice", map[storage.OID]string{1: "newer"})
	r := replctl(t, nil, nodesArg(p, r1, r2), "verify", "--json")
	wantCode(t, r, 0)
	if rep := decode[VerifyReport](t, r); rep.CommonTID != tidN(10) {
		t.Fatalf("common TID %s, want %s", rep.CommonTID, tidN(10))
	}
}

// divergence is one injected divergence between the primary and r1 and
// what verify and diff must report.
type divergence struct {
	name   string
	inject func(p, r1 *fakeNode)
	// first is the first differing TID and kind diff must name (0: the
	// histories agree), records the OIDs it must list.
	first   storage.TID
	kind    string
	records []storage.OID
	// state lists the OIDs whose current state differs.
	state []storage.OID
}

var divergences = []divergence{
	{
		name: "changed record",
		inject: func(_, r1 *fakeNode) {
			r1.txns[4].recs[storage.OID(4*5+3)] = []byte("bit flip")
		},
		first: tidN(5), kind: "differs", records: []storage.OID{23}, state: []storage.OID{23},
	},
	{
		name: "missing transaction",
		inject: func(_, r1 *fakeNode) {
			r1.txns = slices.Delete(r1.txns, 6, 7)
		},
		// Transaction 7 rewrote OID 1 (shadowed by transaction 10) and
		// created OIDs 32..36, which r1 lacks.
		first: tidN(7), kind: "only-a", records: []storage.OID{1, 32, 33, 34, 35, 36}, state: []storage.OID{32, 33, 34, 35, 36},
	},
	{
		name: "state corruption with identical history",
		inject: func(_, r1 *fakeNode) {
			r1.corrupt[17] = []byte("rotten")
		},
		state: []storage.OID{17},
	},
}

func TestVerifyAndDiffFindDivergence(t *testing.T) {
	for _, d := range divergences {
		t.Run(d.name, func(t *testing.T) {
			p, r1, r2 := trio(t)
			d.inject(p, r1)

			r := replctl(t, nil, nodesArg(p, r1, r2), "verify", "--json")
			wantCode(t, r, exitInconsistent)
			rep := decode[VerifyReport](t, r)
			if !slices.Equal(rep.Disagreeing, []string{"r1"}) {
				t.Errorf("verify disagreeing = %q, want [r1]", rep.Disagreeing)
			}
			if got := diffOIDs(rep.State.Diffs); !slices.Equal(got, d.state) {
				t.Errorf("verify state diffs = %v, want %v", got, d.state)
			}
			text := replctl(t, nil, nodesArg(p, r1, r2), "verify")
			if !strings.Contains(text.stdout, "INCONSISTENT: differing from the majority (ties: primary): r1\n") {
				t.Errorf("verify table:\n%s", text.stdout)
			}

			r = replctl(t, nil, nodesArg(p, r1, r2), "diff", "primary", "r1", "--json")
			wantCode(t, r, exitInconsistent)
			dr := decode[DiffReport](t, r)
			checkFirst(t, dr.First, d.first, d.kind, d.records)
			if got := diffOIDs(dr.State.Diffs); !slices.Equal(got, d.state) {
				t.Errorf("diff state diffs = %v, want %v", got, d.state)
			}
		})
	}
}

// After a promotion the old primary committed a transaction the new
// primary never received, and the new primary went on committing.
func TestDiffExtraTransactionOnOldPrimary(t *testing.T) {
	for _, newer := range []bool{false, true} {
		oldP, newP := newFake(t, "old", "replica"), newFake(t, "new", "primary")
		newP.st.Epoch = 2
		oldP.st.State, oldP.st.Quarantine = "quarantined", &Quarantine{Reason: "divergent"}
		history(10, 5, oldP, newP)
		oldP.commit(tidN(11), "lost", map[storage.OID]string{1: "lost write", 99: "lost object"})
		if newer {
			newP.commit(tidN(12), "bob", map[storage.OID]string{1: "after promotion"})
		}
		r := replctl(t, nil, nodesArg(newP, oldP), "verify", "--json")
		wantCode(t, r, exitInconsistent)
		if rep := decode[VerifyReport](t, r); !slices.Equal(rep.Disagreeing, []string{"old"}) {
			t.Errorf("newer=%v: verify disagreeing = %q, want [old]", newer, rep.Disagreeing)
		}
		r = replctl(t, nil, nodesArg(newP, oldP), "diff", "new", "old", "--json")
		wantCode(t, r, exitInconsistent)
		dr := decode[DiffReport](t, r)
		checkFirst(t, dr.First, tidN(11), "only-b", []storage.OID{1, 99})
		if dr.CommonTID != tidN(10) {
			t.Errorf("common TID %s, want %s", dr.CommonTID, tidN(10))
		}
	}
}

func TestDiffIdentical(t *testing.T) {
	p, r1, _ := trio(t)
	r := replctl(t, nil, nodesArg(p, r1), "diff", p.addr(), "r1")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "identical") {
		t.Fatalf("diff output:\n%s", r.stdout)
	}
}

// The hash tree finds one changed object among many in few requests.
func TestHashTreeDrillsDown(t *testing.T) {
	p, r1 := newFake(t, "primary", "primary"), newFake(t, "r1", "replica")
	history(20, 400, p, r1)
	r1.corrupt[4321] = []byte("rotten")
	r := replctl(t, nil, nodesArg(p, r1), "verify", "--json")
	wantCode(t, r, exitInconsistent)
	rep := decode[VerifyReport](t, r)
	if got := diffOIDs(rep.State.Diffs); !slices.Equal(got, []storage.OID{4321}) {
		t.Fatalf("state diffs = %v, want [4321]", got)
	}
	// Finding the OID span takes about 2·log2(8002) one-object listings
	// per node; 256 parts of it hold 32 objects each, so one digest level
	// and one listing per node find the object.
	if rep.State.Requests > 2*(2*14+3) {
		t.Errorf("hash tree walk took %d requests, want at most %d", rep.State.Requests, 2*(2*14+3))
	}
}

func TestMaxObjectsTruncates(t *testing.T) {
	p, r1 := newFake(t, "primary", "primary"), newFake(t, "r1", "replica")
	history(3, 10, p, r1)
	for oid := range storage.OID(20) {
		r1.corrupt[oid+2] = []byte("rotten")
	}
	rep := decode[VerifyReport](t, replctl(t, nil, nodesArg(p, r1), "verify", "--json", "--max-objects", "5"))
	if len(rep.State.Diffs) != 5 || !rep.State.Truncated {
		t.Fatalf("%d diffs, truncated %v; want 5 and true", len(rep.State.Diffs), rep.State.Truncated)
	}
}

func diffOIDs(ds []ObjectDiff) []storage.OID {
	var oids []storage.OID
	for _, d := range ds {
		oids = append(oids, d.OID)
	}
	return oids
}

func checkFirst(t *testing.T, f *FirstDiff, tid storage.TID, kind string, oids []storage.OID) {
	t.Helper()
	if tid == 0 {
		if f != nil {
			t.Errorf("first difference %+v, want none", f)
		}
		return
	}
	if f == nil {
		t.Fatalf("no first difference, want %s", tid)
	}
	if f.TID != tid || f.Kind != kind {
		t.Errorf("first difference at %s (%s), want %s (%s)", f.TID, f.Kind, tid, kind)
	}
	var got []storage.OID
	for _, r := range f.Records {
		got = append(got, r.OID)
	}
	if !slices.Equal(got, oids) {
		t.Errorf("first difference records %v, want %v", got, oids)
	}
}

func TestStatusWatchRefreshesUntilCancelled(t *testing.T) {
	p, r1, _ := trio(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{nodesArg(p, r1), "status", "--watch", "--interval", "1ms"}, &out, &errb, noEnv)
	}()
	// Wait (bounded) for two refreshes, then interrupt.
	deadline := time.Now().Add(testTimeout)
	for strings.Count(out.String(), "2 nodes; 1 primary") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two refreshes within %v:\n%s", testTimeout, out.String())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("status --watch exit %d after interrupt: %s", code, errb.String())
	}
}

func TestAmbiguousName(t *testing.T) {
	p, r1, _ := trio(t)
	r1.st.Name = "primary"
	r := replctl(t, nil, nodesArg(p, r1), "diff", "primary", "r2")
	wantCode(t, r, exitError)
	if !strings.Contains(r.stderr, `are all named "primary"`) {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestFraction(t *testing.T) {
	for _, tc := range []struct {
		first, done, goal storage.TID
		want              float64
	}{
		{0, 0, 0, 0}, {10, 5, 20, 0}, {10, 15, 20, 0.5}, {10, 30, 20, 1}, {10, 20, 10, 0},
	} {
		if got := fraction(tc.first, tc.done, tc.goal); got != tc.want {
			t.Errorf("fraction(%d, %d, %d) = %v, want %v", tc.first, tc.done, tc.goal, got, tc.want)
		}
	}
}
