package main

import (
	"os"
	"testing"
	"time"

	"github.com/repld/repld/internal/node/nodetest"
	"github.com/repld/repld/storage"
)

// TestLargeStoreTimings measures verify and diff on a store of one million
// objects (one primary, one replica, loopback). It takes minutes, so it
// runs only when REPLCTL_LARGE=1:
//
//	REPLCTL_LARGE=1 go test -run TestLargeStoreTimings -v -timeout 30m ./cmd/replctl
func TestLargeStoreTimings(t *testing.T) {
	if os.Getenv("REPLCTL_LARGE") != "1" {
		t.Skip("set REPLCTL_LARGE=1 to measure verify and diff on a million objects")
	}
	const txns, perTxn = 1000, 1000
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 1, WaitBound: 20 * time.Minute})
	start := time.Now()
	c.Workload(txns, perTxn, txns*perTxn)
	c.WaitCaughtUp()
	t.Logf("loaded %d objects in %d transactions in %v", txns*perTxn, txns, time.Since(start).Round(time.Millisecond))

	timed := func(want int, args ...string) {
		t.Helper()
		start := time.Now()
		r := replctl(t, nil, append([]string{clusterNodes(c), "--timeout", "10m"}, args...)...)
		took := time.Since(start)
		wantCode(t, r, want)
		var requests int
		if args[0] == "verify" {
			requests = decode[VerifyReport](t, r).State.Requests
		} else {
			rep := decode[DiffReport](t, r)
			requests = rep.Requests + rep.State.Requests
		}
		t.Logf("replctl %v: exit %d in %v, %d requests", args, r.code, took.Round(time.Millisecond), requests)
	}
	timed(0, "verify", "--json")
	timed(0, "diff", "primary", "r1", "--json")

	r1 := c.Node("r1")
	r1.CorruptObject(777_777, []byte("bit rot"))
	c.C.WaitHealthy("r1")
	timed(exitInconsistent, "verify", "--json")
	timed(exitInconsistent, "diff", "primary", "r1", "--json")

	r1.CommitExtra(storage.Transaction{
		Meta:    storage.TxnMeta{User: []byte("rogue")},
		Records: []storage.Record{{OID: 123_456, Data: []byte("extra")}},
	})
	c.C.WaitPrimaryQuarantined("r1")
	timed(exitInconsistent, "diff", "primary", "r1", "--json")
}
