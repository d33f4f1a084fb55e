package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
)

// TestProcessClientPort runs a primary and a replica with --client and
// uses them as a storage backend: writes through the primary, reads that
// may go to the replica, and a read-only client of the replica alone.
func TestProcessClientPort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the repld binary")
	}
	dir := t.TempDir()
	prim := startProc(t, "primary", nil, "primary", "--name", "primary", "--data", filepath.Join(dir, "primary"),
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--client", "127.0.0.1:0", "--sync", "applied", "--log-format", "json")
	pclient := prim.waitLog("client port serving")["client"].(string)
	gcsAddr := prim.waitLog("primary serving")["listen"].(string)
	rep := startProc(t, "r1", nil, "replica", "--name", "r1", "--data", filepath.Join(dir, "r1"),
		"--primary", gcsAddr, "--admin", "127.0.0.1:0", "--client", "127.0.0.1:0", "--log-format", "json")
	rclient := rep.waitLog("client port serving")["client"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), procWaitTimeout)
	defer cancel()
	c, err := remote.Open(ctx, remote.Config{Primary: []string{pclient}, Replicas: []string{rclient}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	var tid storage.TID
	waitFor(t, "a commit in applied mode (the replica joined)", procWaitTimeout, func() bool {
		txn, err := c.Begin(ctx, storage.TxnMeta{Description: []byte("client port test")})
		if err != nil {
			t.Fatal(err)
		}
		_ = txn.Store(ctx, 1, 0, []byte("hello"))
		if err := txn.Vote(ctx); err != nil {
			t.Fatal(err)
		}
		cm, err := txn.Finish(ctx)
		tid = cm.TID
		return err == nil
	})
	ro, err := remote.Open(ctx, remote.Config{Primary: []string{rclient}, AnyRole: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Begin(ctx, storage.TxnMeta{}); !errors.Is(err, storage.ErrReadOnly) {
		t.Fatalf("Begin through the replica's client port: %v; want ErrReadOnly", err)
	}
	if data, serial, err := ro.Load(ctx, 1); err != nil || string(data) != "hello" || serial != tid {
		t.Fatalf("Load from the replica = %q, %s, %v; want hello at %s", data, serial, err, tid)
	}
	if data, _, err := c.Load(ctx, 1); err != nil || string(data) != "hello" {
		t.Fatalf("Load = %q, %v", data, err)
	}
	prim.stop()
	rep.stop()
}
