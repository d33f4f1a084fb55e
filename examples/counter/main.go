// Command counter is a small application that uses repld as its storage
// backend: it keeps named counters in a storage.Storage and increments them
// in transactions, retrying on conflicts, as any ZODB-style application
// would.
//
// The same code runs on either backend:
//
//	counter -embedded ./data -name visits -add 3     # an embedded primary in this process
//	counter -primary 127.0.0.1:7002 -replicas 127.0.0.1:7012 -name visits -add 3
//
// The second form talks to running nodes started with --client (see the
// README, "Using repld as a storage backend").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/storage/remote"
)

func main() {
	embedded := flag.String("embedded", "", "run an embedded primary on a badger store in this directory")
	primaryAddr := flag.String("primary", "", "client port(s) of the primary, comma-separated (instead of -embedded)")
	replicas := flag.String("replicas", "", "client ports of replicas to read from, comma-separated")
	name := flag.String("name", "visits", "counter name")
	add := flag.Int("add", 1, "how many increments to commit")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *embedded, *primaryAddr, *replicas, *name, *add); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, embedded, primaryAddr, replicas, name string, add int) error {
	var s storage.Storage
	var closeBackend func() error
	var err error
	switch {
	case embedded != "" && primaryAddr == "":
		s, closeBackend, err = openEmbedded(ctx, embedded)
	case primaryAddr != "" && embedded == "":
		s, closeBackend, err = openRemote(ctx, primaryAddr, replicas)
	default:
		return errors.New("give either -embedded DIR or -primary HOST:PORT")
	}
	if err != nil {
		return err
	}
	defer closeBackend()
	counters := &Counters{Store: s}
	var v uint64
	for range add {
		if v, err = counters.Increment(ctx, name); err != nil {
			return err
		}
	}
	if add == 0 {
		if v, err = counters.Get(ctx, name); err != nil {
			return err
		}
	}
	fmt.Printf("%s = %d\n", name, v)
	return nil
}

// openEmbedded runs a primary in this process: a badger store replicated
// to whatever replicas join its group on a loopback port.
func openEmbedded(ctx context.Context, dir string) (storage.Storage, func() error, error) {
	store, err := badgerstore.Open(ctx, badgerstore.Config{Dir: dir + "/store"})
	if err != nil {
		return nil, nil, err
	}
	tcfg := tcptransport.DefaultConfig()
	tcfg.Address = "127.0.0.1:0"
	layer, err := tcptransport.Listen(tcfg)
	if err != nil {
		return nil, nil, errors.Join(err, store.Close())
	}
	node, err := gcs.NewNode(gcs.DefaultConfig("counter"), layer)
	if err != nil {
		return nil, nil, errors.Join(err, layer.Close(), store.Close())
	}
	p, err := primary.Open(ctx, primary.Config{Name: "counter", DataDir: dir, Store: store, Node: node})
	if err != nil {
		return nil, nil, errors.Join(err, node.Close(), store.Close())
	}
	return p, func() error { return errors.Join(p.Close(), node.Close()) }, nil
}

// openRemote connects to running nodes' client ports.
func openRemote(ctx context.Context, primaries, replicas string) (storage.Storage, func() error, error) {
	cfg := remote.Config{Primary: strings.Split(primaries, ",")}
	if replicas != "" {
		cfg.Replicas = strings.Split(replicas, ",")
	}
	c, err := remote.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return c, c.Close, nil
}
