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
// with the next number, so probing for that name detects it. The current
// file of each kind stays open between rounds, so that a round costs
// little more than its fsyncs. A value log rotates only while a write
// puts data there, so it is probed only when one may have. Rounds run
// one at a time; mu orders them with close.
type logFiles struct {
	dir string
	mu  sync.Mutex
	// kinds holds value logs first, so that data a memtable log points to
	// is on disk before the pointer.
	kinds [2]logKind
	// closed is set by close: later rounds open, sync and close each file
	// as they need it, keeping none.
	closed bool
}

// logKind is one kind of badger log file.
type logKind struct {
	ext, format string
	last        int      // highest file number known: the current file
	next        string   // path of file last+1, probed for rotation
	f           *os.File // file last, once a round opened it; nil if not (yet) open or missing
}

const (
	kindVlog = iota
	kindMem
)

func newLogFiles(dir string) (*logFiles, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	lf := &logFiles{dir: dir, kinds: [2]logKind{
		kindVlog: {ext: ".vlog", format: "%06d.vlog"},
		kindMem:  {ext: ".mem", format: "%05d.mem"},
	}}
	for _, e := range entries {
		for i := range lf.kinds {
			k := &lf.kinds[i]
			if n, ok := strings.CutSuffix(e.Name(), k.ext); ok {
				if id, err := strconv.Atoi(n); err == nil && id > k.last {
					k.last = id
				}
			}
		}
	}
	for i := range lf.kinds {
		lf.kinds[i].next = lf.path(&lf.kinds[i], lf.kinds[i].last+1)
	}
	return lf, nil
}

func (lf *logFiles) path(k *logKind, n int) string {
	return filepath.Join(lf.dir, fmt.Sprintf(k.format, n))
}

// sync is one round. If vlog is set, it fsyncs the value log files that
// stopped being current since the previous round and the current one
// (otherwise none rotated and none holds unsynced data); then the
// memtable logs that stopped being current and the current one. On
// Linux, fsync of a file also writes the pages badger dirtied through its
// shared memory mapping, so this is what db.Sync does, plus the rotated
// files, without the value log fsync when no value went there.
func (lf *logFiles) sync(vlog bool) error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if vlog {
		vl := &lf.kinds[kindVlog]
		if err := lf.syncRotated(vl); err != nil {
			return err
		}
		if err := lf.syncCurrent(vl); err != nil {
			return err
		}
	}
	if err := lf.syncRotated(&lf.kinds[kindMem]); err != nil {
		return err
	}
	return lf.syncCurrent(&lf.kinds[kindMem])
}

// syncRotated fsyncs and closes the files of kind k that badger replaced
// since the previous round.
func (lf *logFiles) syncRotated(k *logKind) error {
	for {
		if _, err := os.Stat(k.next); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("probe %s: %w", k.next, err)
		}
		var err error
		if k.f != nil {
			err = syncOpen(k.f)
			k.f = nil
		} else {
			err = syncFile(lf.path(k, k.last))
		}
		if err != nil {
			return err
		}
		k.last++
		k.next = lf.path(k, k.last+1)
	}
}

// syncCurrent fsyncs the current file of kind k, opening it (and keeping
// it open, unless the files are closed) if no round did yet. A file badger
// already removed (a flushed memtable log) needs nothing.
func (lf *logFiles) syncCurrent(k *logKind) error {
	if k.f == nil {
		path := lf.path(k, k.last)
		if lf.closed {
			return syncFile(path)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open %s for sync: %w", path, err)
		}
		k.f = f
	}
	if err := k.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", k.f.Name(), err)
	}
	return nil
}

// close closes the files kept open. Rounds that run later (a deferred
// wait may run one after Close) open and close the files they sync.
func (lf *logFiles) close() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	lf.closed = true
	var errs []error
	for i := range lf.kinds {
		if f := lf.kinds[i].f; f != nil {
			lf.kinds[i].f = nil
			if err := f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", f.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// syncOpen fsyncs and closes a file kept open.
func syncOpen(f *os.File) error {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
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
	return syncOpen(f)
}
