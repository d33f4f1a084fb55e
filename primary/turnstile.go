package primary

import (
	"sync"
	"sync/atomic"
)

// turnstile lets voted transactions broadcast their outcome (finish or
// abort) in commit order. Vote order is commit order is TID order, since
// the local store's commit lock is held from Vote to Finish; but group
// commit releases that lock before the sync, so two Finish calls can return
// in either order. Each voted transaction takes a ticket at Vote (under the
// commit lock) and broadcasts only in its turn.
//
// Holding the turnstile (lock) also excludes every broadcast of an outcome,
// which the catch-up service needs to switch a replica to the live stream at
// a known point.
type turnstile struct {
	mu   sync.Mutex
	next uint64 // ticket whose turn it is
	// waiting holds the tickets waiting for their turn; each turn wakes
	// only the next one (a commit's finishers arrive together, out of order).
	waiting map[uint64]chan struct{}
	sold    atomic.Uint64 // tickets handed out; apart from mu, so Vote never waits for a turn
}

func newTurnstile() *turnstile {
	return &turnstile{next: 1, waiting: make(map[uint64]chan struct{})}
}

// ticket hands out the next ticket. The caller holds the store's commit
// lock, which orders tickets as commits.
func (t *turnstile) ticket() uint64 { return t.sold.Add(1) }

// enter waits for ticket n's turn and returns holding the turnstile; leave
// ends the turn. The wait cannot be abandoned: every ticket is used exactly
// once (its transaction finishes or aborts), and the holder of the previous
// one is broadcasting, which gcs bounds in time.
func (t *turnstile) enter(n uint64) {
	t.mu.Lock()
	for t.next != n {
		ch := make(chan struct{})
		t.waiting[n] = ch
		t.mu.Unlock()
		<-ch
		t.mu.Lock()
	}
}

// leave ends the current turn and lets the next ticket in.
func (t *turnstile) leave() {
	t.next++
	if ch, ok := t.waiting[t.next]; ok {
		delete(t.waiting, t.next)
		close(ch)
	}
	t.mu.Unlock()
}

// lock holds the turnstile between two turns; unlock releases it.
func (t *turnstile) lock()   { t.mu.Lock() }
func (t *turnstile) unlock() { t.mu.Unlock() }
