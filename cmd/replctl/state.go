package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/repld/repld/storage"
)

// Shape of the hash-tree walk. Every level splits a differing range into
// digestParts sub-ranges, so equal ranges cost one digest per node and a
// single changed object among n costs about log_256(2^64) levels of one
// digest request per node, then one listing of at most leafObjects objects.
const (
	digestParts = 256
	leafObjects = 512
	// maxLeafPages bounds the pages read for one leaf range, against a
	// node whose counts and listings disagree.
	maxLeafPages = 64
)

// DefaultMaxObjects bounds how many differing objects verify and diff
// collect before they stop drilling (the report then says truncated).
const DefaultMaxObjects = 1000

// ObjectState is one node's current revision of an object.
type ObjectState struct {
	Node    string      `json:"node"`
	Present bool        `json:"present"`
	Serial  storage.TID `json:"serial"`
	SHA256  string      `json:"sha256"`
	Size    int64       `json:"size"`
	// Agrees: this node has what most nodes (ties: the reference) have.
	Agrees bool `json:"agrees"`
}

// ObjectDiff is an object whose current state differs between nodes.
type ObjectDiff struct {
	OID   storage.OID   `json:"oid"`
	Nodes []ObjectState `json:"nodes"`
}

// RangeNode is one node's digest of a top-level OID range.
type RangeNode struct {
	Node   string `json:"node"`
	Count  uint64 `json:"count"`
	Digest string `json:"digest"`
}

// RangeDiff is a top-level OID range whose digest differs between nodes.
type RangeDiff struct {
	From  storage.OID `json:"from"`
	To    storage.OID `json:"to"`
	Nodes []RangeNode `json:"nodes"`
}

// StateResult is the comparison of the nodes' current state.
type StateResult struct {
	// At is the snapshot TID compared, per node in the order of the
	// report's nodes: the same TID for verify, each node's last for diff.
	At []storage.TID `json:"at"`
	// Objects is how many objects the reference node holds at At.
	Objects uint64       `json:"objects"`
	Ranges  []RangeDiff  `json:"ranges"`
	Diffs   []ObjectDiff `json:"diffs"`
	// Truncated: more differing objects exist than were collected.
	Truncated bool `json:"truncated"`
	// Requests counts digest and listing requests, to show the walk's cost.
	Requests int `json:"requests"`
}

// stateWalk compares the nodes' state at one snapshot TID.
type stateWalk struct {
	cs       []*client
	names    []string
	ref      int // the node that wins ties
	max      int
	res      StateResult
	disagree map[int]bool
	mu       sync.Mutex // guards res.Requests during parallel requests
}

// compareState walks the hash tree of the nodes' state, node i as of TID
// at[i], drilling only into ranges whose digests differ. ref is the index
// of the reference node, names the nodes' names for the report.
func compareState(ctx context.Context, cs []*client, names []string, ref int, at []storage.TID, maxDiffs int) (*StateResult, map[int]bool, error) {
	w := &stateWalk{cs: cs, names: names, ref: ref, max: maxDiffs, disagree: map[int]bool{}}
	w.res.At = at
	w.res.Ranges, w.res.Diffs = []RangeDiff{}, []ObjectDiff{}
	from, to, found, err := w.span(ctx)
	if err != nil || !found {
		return &w.res, w.disagree, err
	}
	if err := w.walk(ctx, from, to, 0); err != nil {
		return nil, nil, err
	}
	return &w.res, w.disagree, nil
}

// span finds the OIDs in use on any node, lowest to highest, by probing
// with one-object listings (about 2·log2 of the highest OID per node).
// Walking only that span keeps the tree shallow: objects numbered from 1
// fill a sliver of the 2^64 OID space, and splitting all of it would take
// several levels that each hash every object before the first split that
// separates any.
func (w *stateWalk) span(ctx context.Context) (from, to storage.OID, found bool, err error) {
	lows, highs, has := make([]storage.OID, len(w.cs)), make([]storage.OID, len(w.cs)), make([]bool, len(w.cs))
	err = each(w.cs, func(i int, c *client) error {
		first := func(from storage.OID) (storage.OID, bool, error) {
			w.count()
			page, err := c.objects(ctx, w.res.At[i], from, math.MaxUint64, 1)
			if err != nil || len(page.Objects) == 0 {
				return 0, false, err
			}
			return page.Objects[0].OID, true, nil
		}
		low, ok, err := first(0)
		if err != nil || !ok {
			return err
		}
		// Invariant: an object at lo, none above hi. Doubling a bound
		// first keeps the probes near 2·log2 of the highest OID in use.
		lo, hi := low, storage.OID(math.MaxUint64)
		for bound := max(lo, 1); bound < 1<<63; bound *= 2 {
			o, ok, err := first(bound)
			if err != nil {
				return err
			}
			if !ok {
				hi = bound - 1
				break
			}
			lo = o
		}
		for range 66 {
			if lo == hi {
				break
			}
			mid := lo + (hi-lo)/2 + 1
			o, ok, err := first(mid)
			switch {
			case err != nil:
				return err
			case ok:
				lo = o
			default:
				hi = mid - 1
			}
		}
		if lo != hi {
			return &nodeError{c.node, "GET /objects", errors.New("probing for the highest OID did not converge")}
		}
		lows[i], highs[i], has[i] = low, hi, true
		return nil
	})
	if err != nil {
		return 0, 0, false, err
	}
	for i := range w.cs {
		if !has[i] {
			continue
		}
		if !found || lows[i] < from {
			from = lows[i]
		}
		if !found || highs[i] > to {
			to = highs[i]
		}
		found = true
	}
	return from, to, found, nil
}

// each runs f for every node concurrently and returns the errors joined.
func each(cs []*client, f func(i int, c *client) error) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { errs[i] = f(i, c) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *stateWalk) count() {
	w.mu.Lock()
	w.res.Requests++
	w.mu.Unlock()
}

func (w *stateWalk) walk(ctx context.Context, from, to storage.OID, depth int) error {
	parts := digestParts
	if uint64(to-from) < digestParts-1 {
		parts = int(to-from) + 1
	}
	ds := make([]*Digest, len(w.cs))
	err := each(w.cs, func(i int, c *client) error {
		w.count()
		d, err := c.digest(ctx, w.res.At[i], from, to, parts)
		ds[i] = d
		return err
	})
	if err != nil {
		return err
	}
	ref := ds[w.ref]
	for i, d := range ds {
		if len(d.Ranges) != len(ref.Ranges) {
			return fmt.Errorf("nodes %s and %s split %s..%s into different ranges (%d and %d); are they running the same version?",
				w.names[w.ref], w.names[i], from, to, len(ref.Ranges), len(d.Ranges))
		}
	}
	if depth == 0 {
		for _, r := range ref.Ranges {
			w.res.Objects += r.Count
		}
	}
	for k, r := range ref.Ranges {
		equal, maxCount := true, uint64(0)
		for i, d := range ds {
			o := d.Ranges[k]
			if o.From != r.From || o.To != r.To {
				return fmt.Errorf("nodes %s and %s split %s..%s differently", w.names[w.ref], w.names[i], from, to)
			}
			equal = equal && o.Digest == r.Digest && o.Count == r.Count
			maxCount = max(maxCount, o.Count)
		}
		if equal {
			continue
		}
		if depth == 0 {
			rd := RangeDiff{From: r.From, To: r.To}
			for i, d := range ds {
				rd.Nodes = append(rd.Nodes, RangeNode{Node: w.names[i], Count: d.Ranges[k].Count, Digest: d.Ranges[k].Digest.String()})
			}
			w.res.Ranges = append(w.res.Ranges, rd)
		}
		if maxCount <= leafObjects || r.From == r.To || (r.From == from && r.To == to) {
			err = w.leaf(ctx, r.From, r.To)
		} else {
			err = w.walk(ctx, r.From, r.To, depth+1)
		}
		if err != nil {
			return err
		}
		if w.res.Truncated {
			return nil
		}
	}
	return nil
}

// leaf lists the objects of a small range on every node and records those
// that differ.
func (w *stateWalk) leaf(ctx context.Context, from, to storage.OID) error {
	lists := make([]map[storage.OID]Object, len(w.cs))
	err := each(w.cs, func(i int, c *client) error {
		m := map[storage.OID]Object{}
		cur := from
		for range maxLeafPages {
			w.count()
			page, err := c.objects(ctx, w.res.At[i], cur, to, leafObjects+1)
			if err != nil {
				return err
			}
			for _, o := range page.Objects {
				m[o.OID] = o
			}
			if !page.More || len(page.Objects) == 0 {
				lists[i] = m
				return nil
			}
			last := page.Objects[len(page.Objects)-1].OID
			if last >= to {
				lists[i] = m
				return nil
			}
			cur = last + 1
		}
		return &nodeError{c.node, "GET /objects", fmt.Errorf("more than %d pages for %s..%s whose digest counted few objects", maxLeafPages, from, to)}
	})
	if err != nil {
		return err
	}
	var oids []storage.OID
	seen := map[storage.OID]bool{}
	for _, m := range lists {
		for oid := range m {
			if !seen[oid] {
				seen[oid] = true
				oids = append(oids, oid)
			}
		}
	}
	slices.Sort(oids)
	for _, oid := range oids {
		keys := make([]string, len(lists))
		for i, m := range lists {
			if o, ok := m[oid]; ok {
				keys[i] = fmt.Sprintf("%s %s", o.Serial, o.SHA256)
			}
		}
		agree := majority(keys, w.ref)
		if allEqual(keys) {
			continue
		}
		if len(w.res.Diffs) >= w.max {
			w.res.Truncated = true
			return nil
		}
		d := ObjectDiff{OID: oid}
		for i, m := range lists {
			o, ok := m[oid]
			s := ObjectState{Node: w.names[i], Present: ok, Agrees: agree[i]}
			if ok {
				s.Serial, s.SHA256, s.Size = o.Serial, o.SHA256.String(), o.Size
			}
			if !agree[i] {
				w.disagree[i] = true
			}
			d.Nodes = append(d.Nodes, s)
		}
		w.res.Diffs = append(w.res.Diffs, d)
	}
	return nil
}

func allEqual(keys []string) bool {
	for _, k := range keys {
		if k != keys[0] {
			return false
		}
	}
	return true
}

// majority reports which nodes hold the most common value; a tie goes to
// the value of node ref, then to the earliest node.
func majority(keys []string, ref int) []bool {
	n := map[string]int{}
	for _, k := range keys {
		n[k]++
	}
	best := keys[ref]
	for _, k := range keys {
		if n[k] > n[best] {
			best = k
		}
	}
	agree := make([]bool, len(keys))
	for i, k := range keys {
		agree[i] = k == best
	}
	return agree
}
