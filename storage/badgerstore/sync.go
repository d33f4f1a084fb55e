package badgerstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxDefer bounds how long a sync round waits for commits about to write.
const maxDefer = 2 * time.Millisecond

// groupSync shares one sync among concurrent callers. A caller's write
// is covered only by a sync that starts after the write, so callers that
// arrive while a round runs join the next round, which one of them runs as
// soon as the current one ends: every round serves everyone who arrived
// during the previous one.
//
// A committer whose round would start while other transactions are open
// (begun and not yet written or ended) lets it wait for their writes, up
// to the duration of the previous round (at most maxDefer): commits that
// arrive one after another, as a replica applies them, as committers
// queue on the commit lock, or as the clients of a replicating primary
// come back from their replicas' acknowledgements, then share one sync
// instead of each starting its own. Syncs cost CPU as well as time, so
// fewer rounds leave more of a busy machine to the commits; the bound
// keeps a transaction that stays open long from delaying others by more
// than one round. A lone committer never waits.
type groupSync struct {
	fn      func() error
	mu      sync.Mutex
	running *syncRound // the round in flight, or nil
	pending *syncRound // the round that starts after it, or nil
	// queued counts the transactions that hold or wait for the commit
	// lock and have not written; changed, when not nil, is closed when it
	// drops. lastRound is how long the previous round took.
	queued    int
	changed   chan struct{}
	lastRound time.Duration
	// open counts the transactions begun and not yet ended (written,
	// aborted or failed); a drop closes changed too.
	open int
}

type syncRound struct {
	done chan struct{}
	err  error
}

// enqueue counts a transaction that waits for the commit lock (and then
// holds it); dequeue ends its count once it wrote or released the lock.
func (g *groupSync) enqueue() {
	g.mu.Lock()
	g.queued++
	g.mu.Unlock()
}

func (g *groupSync) dequeue() {
	g.mu.Lock()
	g.queued--
	g.changedLocked()
	g.mu.Unlock()
}

// opened counts a transaction that began; closed ends its count once it
// wrote or ended otherwise.
func (g *groupSync) opened() {
	g.mu.Lock()
	g.open++
	g.mu.Unlock()
}

func (g *groupSync) closed() {
	g.mu.Lock()
	g.open--
	g.changedLocked()
	g.mu.Unlock()
}

// changedLocked wakes the committers deferring a round. g.mu is held.
func (g *groupSync) changedLocked() {
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

// wait returns once a sync that started after the call has finished. A
// committer (deferrable) may hold its round back for queued commits; the
// other callers hold the commit lock or must not wait for it.
func (g *groupSync) wait(deferrable bool) error {
	g.mu.Lock()
	r := g.pending
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		g.pending = r
	}
	var (
		deadline time.Time
		timer    *time.Timer // reused: a committer may defer several times
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Under mu, a round is pending, running or done: starting and
		// finishing one both happen under mu.
		select {
		case <-r.done:
			g.mu.Unlock()
			return r.err
		default:
		}
		if g.running == nil && deferrable && (g.queued > 0 || g.open > 0) && g.lastRound > 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(min(g.lastRound, maxDefer))
			}
			if d := deadline.Sub(now); d > 0 {
				if g.changed == nil {
					g.changed = make(chan struct{})
				}
				changed := g.changed
				g.mu.Unlock()
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-changed:
				case <-r.done:
				case <-timer.C:
				}
				g.mu.Lock()
				continue
			}
		}
		if g.running == nil { // so r is pending: run it
			g.pending, g.running = nil, r
			g.mu.Unlock()
			start := time.Now()
			err := g.fn()
			g.mu.Lock()
			g.lastRound = time.Since(start)
			r.err = err
			g.running = nil
			close(r.done)
			g.mu.Unlock()
			return err
		}
		cur := g.running
		g.mu.Unlock()
		select {
		case <-cur.done:
		case <-r.done:
		}
		g.mu.Lock()
	}
}

// logFiles tracks badger's write-ahead files so a sync covers files that
// badger rotated away since the previous sync. db.Sync syncs only the
// current memtable log and value log; with badger's SyncWrites off, a
// memtable log replaced by a new one (before its flush) or a value log
// file that filled up is not synced by badger. Rotation creates the file
// with the next number, so probing for that name detects it cheaply.
// Only the sync round (one at a time) uses it.
type logFiles struct {
	dir  string
	last map[string]int // extension → highest file number known
}

// logFormat is how badger names one kind of log file.
type logFormat struct{ ext, format string }

// logFormats are badger's memtable logs and value logs, value logs first.
func logFormats() [2]logFormat {
	return [2]logFormat{{".vlog", "%06d.vlog"}, {".mem", "%05d.mem"}}
}

func newLogFiles(dir string) (*logFiles, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	lf := &logFiles{dir: dir, last: make(map[string]int)}
	for _, e := range entries {
		for _, f := range logFormats() {
			if n, ok := strings.CutSuffix(e.Name(), f.ext); ok {
				if id, err := strconv.Atoi(n); err == nil && id > lf.last[f.ext] {
					lf.last[f.ext] = id
				}
			}
		}
	}
	return lf, nil
}

// syncRotated fsyncs every log file that stopped being current since the
// previous call: value logs first, so that data a memtable log points to
// is on disk before the pointer.
func (lf *logFiles) syncRotated() error {
	for _, f := range logFormats() {
		for {
			next := filepath.Join(lf.dir, fmt.Sprintf(f.format, lf.last[f.ext]+1))
			if _, err := os.Stat(next); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					break
				}
				return fmt.Errorf("probe %s: %w", next, err)
			}
			if err := syncFile(filepath.Join(lf.dir, fmt.Sprintf(f.format, lf.last[f.ext]))); err != nil {
				return err
			}
			lf.last[f.ext]++
		}
	}
	return nil
}

// syncCurrent fsyncs the current memtable log, after the current value
// log if vlog is set. On Linux, fsync of a file also writes the pages
// badger dirtied through its shared memory mapping, so this is what
// db.Sync does, without the value log fsync when no value went there.
func (lf *logFiles) syncCurrent(vlog bool) error {
	for _, f := range logFormats() {
		if f.ext == ".vlog" && !vlog {
			continue
		}
		if err := syncFile(filepath.Join(lf.dir, fmt.Sprintf(f.format, lf.last[f.ext]))); err != nil {
			return err
		}
	}
	return nil
}

// syncFile fsyncs one file; a file badger already removed (a flushed
// memtable log) needs nothing.
func syncFile(path string) error { return syncPath(path, os.O_RDWR, true) }

// syncPath opens path with flag and fsyncs it; missingOK makes a path
// that does not exist a success.
func syncPath(path string, flag int, missingOK bool) error {
	f, err := os.OpenFile(path, flag, 0)
	if missingOK && errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s for sync: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
