package primary_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/memtransport"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
)

// An application replaces its local store by a Primary wrapping it; commits
// then replicate to whatever replicas join the group. Here no replica has
// joined, so an applied commit times out with ErrNotReplicated while the
// transaction stays committed locally.
func Example() {
	ctx := context.Background()
	network, _ := memtransport.NewNetwork(memtransport.Config{})
	defer network.Close()
	layer, _ := network.Listen("primary")
	node, _ := gcs.NewNode(gcs.DefaultConfig("primary"), layer)
	defer node.Close()
	local, _ := memstore.New(memstore.Config{})
	dir, _ := os.MkdirTemp("", "primary-example")
	defer os.RemoveAll(dir)

	p, err := primary.Open(ctx, primary.Config{
		Name: "primary", DataDir: dir, Store: local, Node: node,
		Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: 10 * time.Millisecond},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	var s storage.Storage = p // the one changed constructor
	txn, _ := s.Begin(ctx, storage.TxnMeta{User: []byte("alice")})
	_ = txn.Store(ctx, 1, 0, []byte("hello"))
	_ = txn.Vote(ctx)
	c, err := txn.Finish(ctx)
	fmt.Println("not replicated:", errors.Is(err, primary.ErrNotReplicated))
	data, serial, _ := s.Load(ctx, 1)
	fmt.Println("committed locally:", string(data), serial == c.TID)
	st := p.Status()
	fmt.Println(st.Role, "epoch", st.Epoch, "degraded", st.Sync.Degraded)
	// Output:
	// not replicated: true
	// committed locally: hello true
	// primary epoch 1 degraded true
}
