package clientserver

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/repld/repld/storage"
)

// Hub fans commit notifications out to the connected clients and tracks the
// last committed TID, which reads with an AtLeast wait for. One Hub serves
// one store; it is safe for concurrent use.
type Hub struct {
	mu      sync.Mutex
	last    storage.TID
	changed chan struct{}
	subs    map[*subscriber]struct{}
}

type subscriber struct {
	// owner is the connection that subscribed (nil: none).
	owner *conn
	// fn receives each notification; own says the commit was made by
	// owner's client, which is answered right after (see publish).
	fn func(tid storage.TID, oids []byte, own bool)
}

// NewHub returns a Hub with no subscribers and last TID 0.
func NewHub() *Hub {
	return &Hub{changed: make(chan struct{}), subs: make(map[*subscriber]struct{})}
}

// Publish announces that transaction tid committed and changed oids: every
// subscriber receives it, and Last becomes at least tid. oids are the
// caller's; they may be in any order and contain repeats.
func (h *Hub) Publish(tid storage.TID, oids []storage.OID) { h.publish(nil, tid, oids) }

// publish is Publish for a commit made by origin's client (nil: by someone
// else). origin's subscriber only queues its notification, without waking
// its writer: the commit's answer, which origin sends next, carries it in
// the same write.
func (h *Hub) publish(origin *conn, tid storage.TID, oids []storage.OID) {
	sorted := slices.Clone(oids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	packed := make([]byte, 0, 8*len(sorted))
	for _, oid := range sorted {
		packed = binary.BigEndian.AppendUint64(packed, uint64(oid))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Subscribers are called under the lock so that all of them see
	// notifications in the same order; they only queue.
	for s := range h.subs {
		s.fn(tid, packed, origin != nil && s.owner == origin)
	}
	h.advanceLocked(tid)
}

// Advance makes Last at least tid without notifying anyone: the store's
// state when serving starts.
func (h *Hub) Advance(tid storage.TID) {
	h.mu.Lock()
	h.advanceLocked(tid)
	h.mu.Unlock()
}

func (h *Hub) advanceLocked(tid storage.TID) {
	if tid > h.last {
		h.last = tid
		close(h.changed)
		h.changed = make(chan struct{})
	}
}

// Last returns the highest TID published or advanced to.
func (h *Hub) Last() storage.TID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Wait returns true once Last is at least tid, or false when ctx ends
// first.
func (h *Hub) Wait(ctx context.Context, tid storage.TID) bool {
	for {
		h.mu.Lock()
		last, changed := h.last, h.changed
		h.mu.Unlock()
		if last >= tid {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// subscribe registers fn for every later Publish on behalf of owner (nil:
// none) until the returned function is called. fn runs under the Hub's
// lock and must not block.
func (h *Hub) subscribe(owner *conn, fn func(tid storage.TID, oids []byte, own bool)) (unsubscribe func()) {
	s := &subscriber{owner: owner, fn: fn}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}
