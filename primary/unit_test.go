package primary

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/storage"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("empty Config validated")
	} else {
		for _, want := range []string{"Config.Name", "Config.DataDir", "Config.Store", "Config.Node"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Validate error %q does not name %s", err, want)
			}
		}
	}
	bad := SyncPolicy{Mode: Mode(7), Replicas: -1, Timeout: -time.Second, WhenShort: WhenShort(3)}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad policy validated")
	}
	for _, want := range []string{"Sync.Mode is 7", "Sync.Replicas is -1", "Sync.Timeout is -1s", "Sync.WhenShort is 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not say %q", err, want)
		}
	}
	if got := DefaultConfig(); got.Group != DefaultGroup || got.Sync.Replicas != 1 || got.Sync.Timeout != DefaultSyncTimeout {
		t.Errorf("DefaultConfig() = %+v", got)
	}
}

func TestParse(t *testing.T) {
	for _, m := range []Mode{Async, Received, Applied} {
		if got, err := ParseMode(strings.ToUpper(m.String())); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseMode("sync"); err == nil {
		t.Error("ParseMode(sync) accepted")
	}
	for _, w := range []WhenShort{Block, Degrade} {
		if got, err := ParseWhenShort(w.String()); err != nil || got != w {
			t.Errorf("ParseWhenShort(%q) = %v, %v", w, got, err)
		}
	}
	if _, err := ParseWhenShort("wait"); err == nil {
		t.Error("ParseWhenShort(wait) accepted")
	}
}

// TestTurnstile takes tickets in order and enters in reverse: the turns
// still come in ticket order.
func TestTurnstile(t *testing.T) {
	ts := newTurnstile()
	const n = 50
	tickets := make([]uint64, n)
	for i := range tickets {
		tickets[i] = ts.ticket()
	}
	var order []uint64
	var wg sync.WaitGroup
	for i := n - 1; i >= 0; i-- {
		wg.Go(func() {
			ts.enter(tickets[i])
			order = append(order, tickets[i]) // guarded by the turnstile
			ts.leave()
		})
	}
	wg.Wait()
	for i, got := range order {
		if got != uint64(i+1) {
			t.Fatalf("turn %d went to ticket %d; order %v", i, got, order)
		}
	}
	ts.lock() // between turns
	ts.unlock()
}

func TestCommitIndexLag(t *testing.T) {
	var idx commitIndex
	if got := idx.behind(5); got != 0 {
		t.Fatalf("empty index: behind = %d", got)
	}
	for tid := storage.TID(1); tid <= commitIndexSize+10; tid++ {
		idx.add(tid * 2)
	}
	last := storage.TID((commitIndexSize + 10) * 2)
	if got := idx.behind(last); got != 0 {
		t.Errorf("behind(last) = %d", got)
	}
	if got := idx.behind(last - 2); got != 1 {
		t.Errorf("behind(last-1 commit) = %d", got)
	}
	if got := idx.behind(last - 5); got != 3 {
		t.Errorf("behind(between commits) = %d; want 3", got)
	}
	if got := idx.behind(0); got != commitIndexSize {
		t.Errorf("behind(0) = %d; want the bound %d", got, commitIndexSize)
	}
	base := storage.TIDFromTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := ReplicaStatus{LastAppliedTID: base}
	var small commitIndex
	small.add(base)
	later := storage.TIDFromTime(base.Time().Add(3 * time.Second))
	small.add(later)
	lagOf(&r, &small, later)
	if r.LagTransactions != 1 || r.LagSeconds < 2.99 || r.LagSeconds > 3.01 {
		t.Errorf("lag = %d transactions, %v s; want 1, 3", r.LagTransactions, r.LagSeconds)
	}
	r.LastAppliedTID = later
	lagOf(&r, &small, later)
	if r.LagTransactions != 0 || r.LagSeconds != 0 {
		t.Errorf("caught up: lag = %d, %v", r.LagTransactions, r.LagSeconds)
	}
}
