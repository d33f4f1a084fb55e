package main

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
)

// openBenchClient opens the network client `repld bench` runs its workload
// through and returns it with the path name reports show.
func openBenchClient(ctx context.Context, o *benchOptions, log *zap.Logger) (*remote.Client, string, error) {
	c, err := remote.Open(ctx, remote.Config{Primary: o.primaries, Replicas: o.replicas, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("--primary %v: %w", o.primaries, err)
	}
	return c, "remote", nil
}

// clientLag describes the replicas' lag as far as the client can tell: it
// does not learn their last TIDs, only whether they could serve its reads
// at the state it had seen.
func clientLag(c *remote.Client, replicas int) string {
	if replicas == 0 {
		return "no replicas given (--replicas, --replicas-admin)"
	}
	st := c.Stats()
	return fmt.Sprintf("client's view: replicas served %d reads, %d went to the primary because a replica was behind or down (give --replicas-admin for each replica's last TID)",
		st.ReplicaReads, st.ReplicaFallbacks)
}

// benchConnect returns how the table's rows reach their store (the
// primary, or the local badgerstore of the baseline): a client server on a
// loopback port in front of it and the network client connected to it.
// The rows only write, so the client is given no replicas.
func benchConnect(log *zap.Logger) func(context.Context, storage.Storage) (storage.Storage, string, func() error, error) {
	return func(ctx context.Context, store storage.Storage) (storage.Storage, string, func() error, error) {
		srv, err := clientserver.Listen("127.0.0.1:0", clientserver.Config{Store: store, Logger: log})
		if err != nil {
			return nil, "", nil, err
		}
		c, err := remote.Open(ctx, remote.Config{Primary: []string{srv.Addr().String()}, Logger: log})
		if err != nil {
			return nil, "", nil, errors.Join(err, srv.Close())
		}
		return c, "remote", func() error { return errors.Join(c.Close(), srv.Close()) }, nil
	}
}
