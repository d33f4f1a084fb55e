package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/repld/repld/storage"
)

// rootOID holds the directory of counters: a JSON object from name to the
// OID of the counter's own object. As in ZODB, OID 0 is the root: NewOID
// starts at 1.
const rootOID storage.OID = 0

// maxAttempts bounds the retries of one increment under conflicts.
const maxAttempts = 100

// Counters keeps named counters in a storage.Storage: the root object maps
// names to OIDs, and each counter is an object holding its decimal value.
// Every change is a transaction that conflicts with concurrent changes of
// the same objects, so increments from many processes never get lost.
type Counters struct {
	Store storage.Storage
}

// Get returns the counter's value (0 if it does not exist).
func (c *Counters) Get(ctx context.Context, name string) (uint64, error) {
	dir, _, err := c.directory(ctx)
	if err != nil {
		return 0, err
	}
	oid, ok := dir[name]
	if !ok {
		return 0, nil
	}
	v, _, err := c.value(ctx, oid)
	return v, err
}

// Increment adds one to the counter, creating it if needed, and returns
// the new value.
func (c *Counters) Increment(ctx context.Context, name string) (uint64, error) {
	for attempt := range maxAttempts {
		v, err := c.tryIncrement(ctx, name)
		if !errors.Is(err, storage.ErrConflict) {
			return v, err
		}
		// Someone else committed first. Their commit may still be on its
		// way to disk, so back off a little before reading again.
		t := time.NewTimer(time.Duration(min(attempt+1, 20)) * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
	return 0, fmt.Errorf("increment %s: still conflicting after %d attempts", name, maxAttempts)
}

func (c *Counters) tryIncrement(ctx context.Context, name string) (uint64, error) {
	dir, dirSerial, err := c.directory(ctx)
	if err != nil {
		return 0, err
	}
	txn, err := c.Store.Begin(ctx, storage.TxnMeta{User: []byte("counter"), Description: []byte("increment " + name)})
	if err != nil {
		return 0, err
	}
	defer txn.Abort(ctx) // a no-op once finished
	oid, ok := dir[name]
	var v uint64
	var serial storage.TID
	if ok {
		if v, serial, err = c.value(ctx, oid); err != nil {
			return 0, err
		}
	} else {
		// A new counter: a new object, and the directory names it.
		if oid, err = c.Store.NewOID(ctx); err != nil {
			return 0, err
		}
		dir[name] = oid
		b, err := json.Marshal(dir)
		if err != nil {
			return 0, err
		}
		if err := txn.Store(ctx, rootOID, dirSerial, b); err != nil {
			return 0, err
		}
	}
	v++
	if err := txn.Store(ctx, oid, serial, fmt.Appendf(nil, "%d", v)); err != nil {
		return 0, err
	}
	// Vote and Finish in one step where the store offers it (a network
	// client): one round trip, and no commit lock held across it.
	if _, err := storage.CommitTxn(ctx, txn); err != nil {
		return 0, err
	}
	return v, nil
}

// directory loads the root object.
func (c *Counters) directory(ctx context.Context) (map[string]storage.OID, storage.TID, error) {
	data, serial, err := c.Store.Load(ctx, rootOID)
	if errors.Is(err, storage.ErrNotFound) {
		return map[string]storage.OID{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	dir := map[string]storage.OID{}
	if err := json.Unmarshal(data, &dir); err != nil {
		return nil, 0, fmt.Errorf("counter directory: %w", err)
	}
	return dir, serial, nil
}

// value loads one counter.
func (c *Counters) value(ctx context.Context, oid storage.OID) (uint64, storage.TID, error) {
	data, serial, err := c.Store.Load(ctx, oid)
	if err != nil {
		return 0, 0, err
	}
	var v uint64
	if _, err := fmt.Sscan(string(data), &v); err != nil {
		return 0, 0, fmt.Errorf("counter %s: %w", oid, err)
	}
	return v, serial, nil
}
