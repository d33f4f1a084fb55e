package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
)

// Defaults of zero Config fields.
const (
	DefaultClients       = 1
	DefaultDuration      = 10 * time.Second
	DefaultObjectSize    = 100
	DefaultObjectsPerTxn = 1
)

// MaxObjectSize bounds Config.ObjectSize so a typo cannot exhaust memory:
// each client holds one payload of this size.
const MaxObjectSize = 512 << 20

// Config describes a workload. Zero fields take their defaults, except that
// a zero Duration with a non-zero Transactions means "until Transactions".
type Config struct {
	// Clients is the number of concurrent clients, each with its own
	// objects; 0 means DefaultClients.
	Clients int
	// Duration is how long the clients run. 0 means DefaultDuration, or no
	// limit when Transactions is set.
	Duration time.Duration
	// Transactions, if positive, stops the run after that many commits in
	// total (whichever of Duration and Transactions comes first).
	Transactions int
	// ObjectSize is the size of every object revision in bytes; 0 means
	// DefaultObjectSize.
	ObjectSize int
	// ObjectsPerTxn is how many objects each transaction writes; 0 means
	// DefaultObjectsPerTxn.
	ObjectsPerTxn int
	// ReadRatio is the fraction of operations, 0 to 1, that load one of the
	// client's objects instead of committing.
	ReadRatio float64
	// Seed makes the payloads and the choice of reads reproducible.
	Seed uint64
	// User is the user name in the transactions' metadata; empty means
	// "repld-bench".
	User string
}

func (c Config) withDefaults() Config {
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.Duration == 0 && c.Transactions <= 0 {
		c.Duration = DefaultDuration
	}
	if c.ObjectSize == 0 {
		c.ObjectSize = DefaultObjectSize
	}
	if c.ObjectsPerTxn == 0 {
		c.ObjectsPerTxn = DefaultObjectsPerTxn
	}
	if c.User == "" {
		c.User = "repld-bench"
	}
	return c
}

// Validate reports every bad setting, naming it, its value and the fix.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Clients < 1 || c.Clients > 10000 {
		errs = append(errs, fmt.Errorf("loadgen: Clients is %d: use 1 to 10000", c.Clients))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("loadgen: Duration is %v: use a positive duration such as 10s", c.Duration))
	}
	if c.Transactions < 0 {
		errs = append(errs, fmt.Errorf("loadgen: Transactions is %d: use 0 (no limit) or more", c.Transactions))
	}
	if c.ObjectSize < 0 || c.ObjectSize > MaxObjectSize {
		errs = append(errs, fmt.Errorf("loadgen: ObjectSize is %d: use 1 to %d bytes (0 means %d)", c.ObjectSize, MaxObjectSize, DefaultObjectSize))
	}
	if c.ObjectsPerTxn < 1 || c.ObjectsPerTxn > 100000 {
		errs = append(errs, fmt.Errorf("loadgen: ObjectsPerTxn is %d: use 1 to 100000", c.ObjectsPerTxn))
	}
	if !(c.ReadRatio >= 0 && c.ReadRatio < 1) {
		errs = append(errs, fmt.Errorf("loadgen: ReadRatio is %v: use a fraction from 0 up to (not including) 1", c.ReadRatio))
	}
	return errors.Join(errs...)
}

// ErrStaleRead reports a Load that returned an older revision than the
// client itself had committed: a broken read-your-writes guarantee.
var ErrStaleRead = errors.New("loadgen: stale read")

// Result is what a run measured.
type Result struct {
	Clients int `json:"clients"`
	// Elapsed is the time from the start signal (every client has its
	// objects) until the last client stopped.
	Elapsed time.Duration `json:"elapsed"`
	// Commits counts finished transactions, NotReplicated among them those
	// that returned primary.ErrNotReplicated.
	Commits       uint64 `json:"commits"`
	NotReplicated uint64 `json:"not_replicated"`
	// Objects and Bytes count object revisions and their bytes committed.
	Objects uint64 `json:"objects"`
	Bytes   uint64 `json:"bytes"`
	// Reads counts Loads, ReadBytes the bytes they returned.
	Reads     uint64 `json:"reads"`
	ReadBytes uint64 `json:"read_bytes"`
	// Commit is the latency of whole commits (Begin to Finish), Read that
	// of Loads.
	Commit Latency `json:"commit_latency"`
	Read   Latency `json:"read_latency"`
	// LastTID is the newest TID any client committed.
	LastTID storage.TID `json:"last_tid"`
}

func perSec(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// CommitsPerSec is commits per second of Elapsed.
func (r Result) CommitsPerSec() float64 { return perSec(r.Commits, r.Elapsed) }

// ObjectsPerSec is object revisions committed per second.
func (r Result) ObjectsPerSec() float64 { return perSec(r.Objects, r.Elapsed) }

// MBPerSec is object bytes committed per second, in MB (10^6 bytes).
func (r Result) MBPerSec() float64 { return perSec(r.Bytes, r.Elapsed) / 1e6 }

// ReadsPerSec is Loads per second.
func (r Result) ReadsPerSec() float64 { return perSec(r.Reads, r.Elapsed) }

// Run runs the workload cfg describes against s and returns what it
// measured. It stops at the end of the duration, after the configured
// number of transactions, or at the first error or when ctx ends, returning
// the result so far with the error.
func Run(ctx context.Context, s storage.Storage, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()

	// Every client gets its objects and payload before the clock starts.
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		c, err := newClient(ctx, s, cfg, i)
		if err != nil {
			return Result{}, fmt.Errorf("loadgen: set up client %d: %w", i, err)
		}
		clients[i] = c
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.Duration > 0 {
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeout(runCtx, cfg.Duration)
		defer stop()
	}
	var budget atomic.Int64
	budget.Store(int64(cfg.Transactions))
	limited := cfg.Transactions > 0

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	for i, c := range clients {
		wg.Go(func() {
			if err := c.run(runCtx, ctx, limited, &budget); err != nil {
				errs[i] = fmt.Errorf("loadgen: client %d: %w", i, err)
				cancel(errs[i])
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("loadgen: interrupted: %w", context.Cause(ctx)))
	}
	res := Result{Clients: cfg.Clients, Elapsed: time.Since(start)}
	var commit, read Histogram
	for _, c := range clients {
		res.Commits += c.commits
		res.NotReplicated += c.notReplicated
		res.Reads += c.reads
		res.ReadBytes += c.readBytes
		res.LastTID = max(res.LastTID, c.lastTID)
		commit.Merge(&c.commitLat)
		read.Merge(&c.readLat)
	}
	res.Objects = res.Commits * uint64(cfg.ObjectsPerTxn)
	res.Bytes = res.Objects * uint64(cfg.ObjectSize)
	res.Commit, res.Read = commit.Summary(), read.Summary()
	return res, errors.Join(errs...)
}

// client is one workload client: its own objects, their serials as it last
// committed them, and its counters. Only its own goroutine touches it while
// it runs.
type client struct {
	s         storage.Storage
	meta      storage.TxnMeta
	oids      []storage.OID
	serials   []storage.TID
	payload   []byte
	rng       *rand.Rand
	readRatio float64

	commits, notReplicated, reads, readBytes uint64
	lastTID                                  storage.TID
	commitLat, readLat                       Histogram
}

func newClient(ctx context.Context, s storage.Storage, cfg Config, i int) (*client, error) {
	c := &client{
		s:         s,
		meta:      storage.TxnMeta{User: []byte(cfg.User), Description: []byte(fmt.Sprintf("client %d", i))},
		oids:      make([]storage.OID, cfg.ObjectsPerTxn),
		serials:   make([]storage.TID, cfg.ObjectsPerTxn),
		payload:   make([]byte, cfg.ObjectSize),
		rng:       rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
		readRatio: cfg.ReadRatio,
	}
	var seed [32]byte
	seed[0], seed[1] = byte(i), byte(i>>8)
	seed[2] = byte(cfg.Seed)
	_, _ = rand.NewChaCha8(seed).Read(c.payload)
	for j := range c.oids {
		oid, err := s.NewOID(ctx)
		if err != nil {
			return nil, fmt.Errorf("new OID: %w", err)
		}
		c.oids[j] = oid
	}
	return c, nil
}

// run does operations until runCtx ends or the shared budget of commits
// runs out. Operations in flight use opCtx, the caller's context, so the end
// of the duration does not turn the last commit into an error.
func (c *client) run(runCtx, opCtx context.Context, limited bool, budget *atomic.Int64) error {
	for runCtx.Err() == nil {
		if c.commits > 0 && c.readRatio > 0 && c.rng.Float64() < c.readRatio {
			if err := c.read(opCtx); err != nil {
				return err
			}
			continue
		}
		if limited && budget.Add(-1) < 0 {
			return nil
		}
		if err := c.commit(opCtx); err != nil {
			return err
		}
	}
	return nil
}

func (c *client) commit(ctx context.Context) error {
	start := time.Now()
	txn, err := c.s.Begin(ctx, c.meta)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for j, oid := range c.oids {
		if err := txn.Store(ctx, oid, c.serials[j], c.payload); err != nil {
			_ = txn.Abort(ctx)
			return fmt.Errorf("store %s: %w", oid, err)
		}
	}
	// One step where the store offers it: a network client then holds
	// the primary's commit lock for no round trip at all.
	commit, err := storage.CommitTxn(ctx, txn)
	if err != nil {
		if commit.TID == 0 || !errors.Is(err, primary.ErrNotReplicated) {
			_ = txn.Abort(ctx) // a no-op unless voted and not finished
			return fmt.Errorf("commit: %w", err)
		}
		c.notReplicated++
	}
	c.commitLat.Record(time.Since(start))
	c.commits++
	c.lastTID = max(c.lastTID, commit.TID)
	for j := range c.serials {
		c.serials[j] = commit.TID
	}
	return nil
}

func (c *client) read(ctx context.Context) error {
	j := c.rng.IntN(len(c.oids))
	start := time.Now()
	data, serial, err := c.s.Load(ctx, c.oids[j])
	if err != nil {
		return fmt.Errorf("load %s: %w", c.oids[j], err)
	}
	c.readLat.Record(time.Since(start))
	if serial < c.serials[j] {
		return fmt.Errorf("%w: load %s returned serial %s, older than this client's commit %s", ErrStaleRead, c.oids[j], serial, c.serials[j])
	}
	c.reads++
	c.readBytes += uint64(len(data))
	return nil
}
