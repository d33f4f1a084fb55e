package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/repld/repld/internal/node/nodetest"
	"github.com/repld/repld/storage"
)

// TestReadmeExamples prints what replctl shows for a cluster with injected
// divergence, the source of the README's examples. It runs only when
// REPLCTL_README=1:
//
//	REPLCTL_README=1 go test -run TestReadmeExamples -v ./cmd/replctl
func TestReadmeExamples(t *testing.T) {
	if os.Getenv("REPLCTL_README") != "1" {
		t.Skip("set REPLCTL_README=1 to print the README's examples")
	}
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 2})
	c.Workload(50, 3, 40)
	c.WaitCaughtUp()
	r1, r2 := c.Node("r1"), c.Node("r2")
	r2.CorruptObject(30, []byte("bit rot"))
	r1.Stop()
	missed := c.Workload(4, 3, 40)
	r1.ReplayFromPrimary(func(txn *storage.Transaction) bool {
		if txn.TID == missed[1].TID {
			txn.Records[0].Data = []byte("changed")
		}
		return true
	})
	r1.Start()
	c.C.WaitPrimaryQuarantined("r1")
	c.WaitCaughtUp("r2")
	for _, args := range [][]string{
		{"status"}, {"verify"}, {"diff", "primary", "r1"}, {"diff", "primary", "r2"},
		{"verify", "--json"}, {"diff", "primary", "r1", "--json"},
	} {
		r := replctl(t, nil, append([]string{clusterNodes(c)}, args...)...)
		fmt.Printf("$ replctl %v\n%s%s(exit %d)\n\n", args, r.stdout, r.stderr, r.code)
	}
}
