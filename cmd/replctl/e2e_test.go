package main

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/repld/repld/internal/node/nodetest"
	"github.com/repld/repld/storage"
)

// These tests run replctl against real nodes: a primary and replicas on
// badger stores replicating over loopback TCP, each with its admin server.

func clusterNodes(c *nodetest.Cluster) string { return "--nodes=" + strings.Join(c.AdminAddrs(), ",") }

func txnOIDs(t *testing.T, c *nodetest.Cluster, tid storage.TID) []storage.OID {
	t.Helper()
	it, err := c.Primary().Store().Iterator(t.Context(), tid, tid)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	txn, err := it.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var oids []storage.OID
	for _, r := range txn.Records {
		oids = append(oids, r.OID)
	}
	slices.Sort(oids)
	return oids
}

// A changed record (r1) and a missing transaction (r2): both replicas
// applied something else than the primary while stopped.
func TestEndToEndChangedRecordAndMissingTransaction(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 2})
	c.Workload(10, 3, 20)
	c.WaitCaughtUp()
	wantCode(t, replctl(t, nil, clusterNodes(c), "verify"), 0)

	r1, r2 := c.Node("r1"), c.Node("r2")
	r1.Stop()
	r2.Stop()
	missed := c.Workload(4, 3, 20)
	var changed storage.OID
	r1.ReplayFromPrimary(func(txn *storage.Transaction) bool {
		if txn.TID == missed[1].TID {
			changed = txn.Records[0].OID
			txn.Records[0].Data = []byte("changed")
		}
		return true
	})
	r2.ReplayFromPrimary(func(txn *storage.Transaction) bool { return txn.TID != missed[2].TID })
	r1.Start()
	r2.Start()
	c.C.WaitPrimaryQuarantined("r1")
	c.C.WaitPrimaryQuarantined("r2")

	r := replctl(t, nil, clusterNodes(c), "verify", "--json")
	wantCode(t, r, exitInconsistent)
	if rep := decode[VerifyReport](t, r); !slices.Equal(rep.Disagreeing, []string{"r1", "r2"}) {
		t.Errorf("verify disagreeing = %q, want [r1 r2]", rep.Disagreeing)
	}
	st := decode[statusReport](t, replctl(t, nil, clusterNodes(c), "status", "--json"))
	if len(st.Nodes) != 3 || st.Nodes[1].State != "quarantined" || st.Nodes[1].QuarantineReason == "" {
		t.Errorf("status --json = %+v", st.Nodes)
	}

	r = replctl(t, nil, clusterNodes(c), "diff", "primary", "r1", "--json")
	wantCode(t, r, exitInconsistent)
	dr := decode[DiffReport](t, r)
	checkFirst(t, dr.First, missed[1].TID, "differs", []storage.OID{changed})
	if dr.CommonTID != missed[0].TID {
		t.Errorf("r1: common TID %s, want %s", dr.CommonTID, missed[0].TID)
	}

	r = replctl(t, nil, clusterNodes(c), "diff", "primary", "r2", "--json")
	wantCode(t, r, exitInconsistent)
	checkFirst(t, decode[DiffReport](t, r).First, missed[2].TID, "only-a", txnOIDs(t, c, missed[2].TID))
}

// A corrupted object with an identical history (r1), and a transaction
// only r2 holds, as an old primary does that committed after a promotion.
func TestEndToEndStateCorruptionAndExtraTransaction(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 2})
	c.Workload(10, 3, 20)
	c.WaitCaughtUp()
	r1, r2 := c.Node("r1"), c.Node("r2")
	r1.CorruptObject(7, []byte("bit rot"))
	extra := r2.CommitExtra(storage.Transaction{
		Meta:    storage.TxnMeta{User: []byte("old primary")},
		Records: []storage.Record{{OID: 3, Data: []byte("lost write")}, {OID: 500, Data: []byte("lost object")}},
	})
	c.C.WaitPrimaryQuarantined("r2")
	// The new primary goes on committing.
	c.Workload(2, 2, 20)
	c.WaitCaughtUp("r1")

	r := replctl(t, nil, clusterNodes(c), "verify", "--json")
	wantCode(t, r, exitInconsistent)
	rep := decode[VerifyReport](t, r)
	if !slices.Equal(rep.Disagreeing, []string{"r1", "r2"}) {
		t.Errorf("verify disagreeing = %q, want [r1 r2]", rep.Disagreeing)
	}
	if got := diffOIDs(rep.State.Diffs); !slices.Contains(got, 7) {
		t.Errorf("verify state diffs %v lack the corrupted object 7", got)
	}

	r = replctl(t, nil, clusterNodes(c), "diff", "primary", "r1", "--json")
	wantCode(t, r, exitInconsistent)
	dr := decode[DiffReport](t, r)
	checkFirst(t, dr.First, 0, "", nil)
	if got := diffOIDs(dr.State.Diffs); !slices.Equal(got, []storage.OID{7}) {
		t.Errorf("diff primary r1: state diffs %v, want [7]", got)
	}

	r = replctl(t, nil, clusterNodes(c), "diff", "primary", "r2", "--json")
	wantCode(t, r, exitInconsistent)
	checkFirst(t, decode[DiffReport](t, r).First, extra.TID, "only-b", []storage.OID{3, 500})
}

// Without any divergence every command agrees, and diff of a node with
// itself is refused.
func TestEndToEndConsistent(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 1})
	commits := c.Workload(20, 5, 50)
	c.WaitCaughtUp()
	r := replctl(t, nil, clusterNodes(c), "verify", "--json")
	wantCode(t, r, 0)
	rep := decode[VerifyReport](t, r)
	if rep.CommonTID != commits[len(commits)-1].TID || rep.State.Objects != 50 {
		t.Errorf("verify = common %s, %d objects", rep.CommonTID, rep.State.Objects)
	}
	wantCode(t, replctl(t, nil, clusterNodes(c), "diff", "primary", "r1"), 0)
	st := decode[statusReport](t, replctl(t, nil, clusterNodes(c), "status", "--json"))
	names := slices.Collect(maps.Keys(map[string]bool{st.Nodes[0].Name: true, st.Nodes[1].Name: true}))
	slices.Sort(names)
	if !slices.Equal(names, []string{"primary", "r1"}) || st.Nodes[1].State != "live" {
		t.Errorf("status = %+v", st.Nodes)
	}
	wantCode(t, replctl(t, nil, clusterNodes(c), "diff", "r1", c.Node("r1").AdminAddr()), exitError)
}
