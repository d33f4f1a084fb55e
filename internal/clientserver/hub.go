package clientserver

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/repld/repld/internal/clientproto"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
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
	fn func(n *notice, own bool)
}

// notice is one commit's notification as the subscribers receive it. It
// encodes its invalidation once for all of them: encoding is most of what
// a notification costs, and every connection sends the same bytes.
type notice struct {
	tid  storage.TID
	oids []byte // 8 bytes big-endian each, ascending

	// encoded holds the invalidation encoded with each codec asked for:
	// one per server sharing the Hub, usually one.
	encoded []encodedNotice
}

// encodedNotice is a notice's invalidation as one codec encodes it.
type encodedNotice struct {
	codec *wire.Codec
	frame clientproto.Frame
	err   error
}

// invalidation returns the notice's invalidation encoded with c. Only
// subscribers call it, one at a time under the Hub's lock, so it is
// encoded once per commit and server.
func (n *notice) invalidation(c *wire.Codec) (clientproto.Frame, error) {
	for _, e := range n.encoded {
		if e.codec == c {
			return e.frame, e.err
		}
	}
	f, err := clientproto.EncodeFrame(c, &wire.CInvalidate{TID: uint64(n.tid), OIDs: n.oids})
	n.encoded = append(n.encoded, encodedNotice{codec: c, frame: f, err: err})
	return f, err
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
	n := &notice{tid: tid, oids: packed}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Subscribers are called under the lock so that all of them see
	// notifications in the same order; they only queue.
	for s := range h.subs {
		s.fn(n, origin != nil && s.owner == origin)
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
func (h *Hub) subscribe(owner *conn, fn func(n *notice, own bool)) (unsubscribe func()) {
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
