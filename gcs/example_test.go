package gcs_test

import (
	"context"
	"fmt"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/memtransport"
)

// A primary creates a group, a replica joins it through the primary's
// address, the primary multicasts and the replica answers with a unicast.
func Example() {
	ctx := context.Background()
	network, err := memtransport.NewNetwork(memtransport.Config{})
	if err != nil {
		panic(err)
	}
	defer network.Close()
	newNode := func(name string) *gcs.Node {
		layer, err := network.Listen(name)
		if err != nil {
			panic(err)
		}
		n, err := gcs.NewNode(gcs.DefaultConfig(name), layer)
		if err != nil {
			panic(err)
		}
		return n
	}
	primary, replica := newNode("primary"), newNode("replica")
	defer primary.Close()
	defer replica.Close()

	g, err := primary.Create(ctx, "replication")
	if err != nil {
		panic(err)
	}
	r, err := replica.Join(ctx, "replication", "primary")
	if err != nil {
		panic(err)
	}
	ev, _ := r.Receive(ctx)
	fmt.Println("replica:", ev.Kind, ev.View.ID, ev.View.Members)

	// Parts are sent as one message without being copied together.
	if err := g.Multicast(ctx, []byte("store "), []byte("oid 7")); err != nil {
		panic(err)
	}
	ev, _ = r.Receive(ctx)
	fmt.Printf("replica: %s from %s\n", ev.Data, ev.Origin)
	ev.Release()
	if err := r.Send(ctx, g.Self(), []byte("applied")); err != nil {
		panic(err)
	}

	for range 3 {
		ev, _ = g.Receive(ctx)
		switch ev.Kind {
		case gcs.EventView:
			fmt.Println("primary:", ev.Kind, ev.View.ID, ev.View.Members)
		case gcs.EventMessage:
			fmt.Printf("primary: %s from %s (unicast %v)\n", ev.Data, ev.Origin, ev.Unicast)
		}
	}
	// Output:
	// replica: view 2 [primary#1 replica#2]
	// replica: store oid 7 from primary#1
	// primary: view 1 [primary#1]
	// primary: view 2 [primary#1 replica#2]
	// primary: applied from replica#2 (unicast true)
}
