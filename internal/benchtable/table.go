package benchtable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/cputime"
	"github.com/repld/repld/internal/loadgen"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

// Defaults of zero Config fields.
const (
	DefaultRowDuration = 2 * time.Second
	DefaultRounds      = 3
	DefaultCatchUpTxns = 100000
	DefaultResyncLarge = 32
	// largeObject is the object size of the large workload and of the
	// large objects the full resync copies.
	largeObject = 16 << 20
)

// Workload is one column group of the table: what each client commits.
type Workload struct {
	// Name is "small", "medium" or "large" in the default table.
	Name          string `json:"name"`
	Clients       int    `json:"clients"`
	ObjectsPerTxn int    `json:"objects_per_txn"`
	ObjectSize    int    `json:"object_size"`
}

// DefaultWorkloads returns the workloads: small (1 × 100 B) and
// medium (10 × 1 KiB) with 1 and 16 clients, large (1 × 16 MiB) with 1
// client.
func DefaultWorkloads() []Workload {
	return []Workload{
		{"small", 1, 1, 100},
		{"small", 16, 1, 100},
		{"medium", 1, 10, 1 << 10},
		{"medium", 16, 10, 1 << 10},
		{"large", 1, 1, largeObject},
	}
}

// Setup is what a row runs against.
type Setup struct {
	// Local runs against a badgerstore alone, with no replication: the
	// baseline. Replicas and Mode are then ignored.
	Local bool `json:"local"`
	// Mirror runs against two badgerstores side by side, each commit going
	// to both and returning once both are durable, with no replication
	// protocol: the control of the replicated rows (what two durable
	// copies of every commit cost this machine). Replicas and Mode are
	// then ignored.
	Mirror bool `json:"mirror,omitempty"`
	// Replicas is the number of replicas of the primary.
	Replicas int `json:"replicas"`
	// Mode is the primary's sync mode (k=1).
	Mode primary.Mode `json:"-"`
}

// String names the setup as the table prints it.
func (s Setup) String() string {
	switch {
	case s.Local:
		return "local badger"
	case s.Mirror:
		return "2 local, mirrored"
	case s.Replicas == 0:
		return "primary, 0 replicas"
	case s.Replicas == 1:
		return "1 replica, " + s.Mode.String()
	}
	return fmt.Sprintf("%d replicas, %s", s.Replicas, s.Mode)
}

// DefaultSetups returns local-only, the mirror, a primary with no
// replica, and a primary with 1 and with 2 replicas in each sync mode.
func DefaultSetups() []Setup {
	s := []Setup{{Local: true}, {Mirror: true}, {Replicas: 0}}
	for _, n := range []int{1, 2} {
		for _, m := range []primary.Mode{primary.Async, primary.Received, primary.Applied} {
			s = append(s, Setup{Replicas: n, Mode: m})
		}
	}
	return s
}

// Config configures a run of the table. Zero fields take their defaults.
type Config struct {
	// Dir is where the temporary data directories go; empty means the
	// system's temporary directory.
	Dir string
	// RowDuration is how long each row's workload runs; 0 means
	// DefaultRowDuration.
	RowDuration time.Duration
	// Rounds is how many times each workload's rows are measured, every
	// row once per round, a round after another; 0 means DefaultRounds.
	// A shared machine's disk and cores change speed from one second to
	// the next, so one measurement of a row can land in a slow spell its
	// baseline missed: with several rounds each ratio is the median of
	// the rounds' ratios, each to the baseline of its own round.
	Rounds int
	// Workloads and Setups span the rows; nil means DefaultWorkloads and
	// DefaultSetups. Every workload runs against the local setup too,
	// which is its baseline.
	Workloads []Workload
	Setups    []Setup
	// CatchUpTxns is how many small transactions the primary commits while
	// the replica is stopped in the catch-up measurement; 0 means
	// DefaultCatchUpTxns, negative skips the catch-up and resync.
	CatchUpTxns int
	// ResyncLarge is how many 16 MiB objects the primary commits on top
	// before the full resync; 0 means DefaultResyncLarge, negative none.
	ResyncLarge int
	// Connect, if set, returns the storage a row's clients use (a network
	// client to a client port in front of store: the primary, or the local
	// badgerstore of the baseline), the path name the
	// table shows for it, and a function that releases it. Every
	// replicated row goes through it, and so does a second baseline row of
	// the local badgerstore: replicated rows are compared with the local
	// row of their own path. Nil runs the workload against the embedded
	// primary.
	Connect func(ctx context.Context, store storage.Storage) (s storage.Storage, path string, release func() error, err error)
	// Progress, if set, receives one line per finished measurement while
	// the table runs.
	Progress io.Writer
	// Logger receives the nodes' logs; nil discards them.
	Logger *zap.Logger
}

func (c Config) withDefaults() Config {
	if c.RowDuration == 0 {
		c.RowDuration = DefaultRowDuration
	}
	if c.Rounds == 0 {
		c.Rounds = DefaultRounds
	}
	if c.Workloads == nil {
		c.Workloads = DefaultWorkloads()
	}
	if c.Setups == nil {
		c.Setups = DefaultSetups()
	}
	if c.CatchUpTxns == 0 {
		c.CatchUpTxns = DefaultCatchUpTxns
	}
	if c.ResyncLarge == 0 {
		c.ResyncLarge = DefaultResyncLarge
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports every bad setting, naming it, its value and the fix.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.RowDuration < 0 {
		errs = append(errs, fmt.Errorf("benchtable: RowDuration is %v: use a positive duration such as 3s", c.RowDuration))
	}
	if c.Rounds < 0 || c.Rounds > 100 {
		errs = append(errs, fmt.Errorf("benchtable: Rounds is %d: use 1 to 100 (an odd number gives a plain median)", c.Rounds))
	}
	for _, w := range c.Workloads {
		if err := (loadgen.Config{Clients: w.Clients, ObjectsPerTxn: w.ObjectsPerTxn, ObjectSize: w.ObjectSize}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("benchtable: workload %q: %w", w.Name, err))
		}
	}
	for _, s := range c.Setups {
		if !s.Local && (s.Replicas < 0 || s.Replicas > 16) {
			errs = append(errs, fmt.Errorf("benchtable: setup %q: Replicas is %d: use 0 to 16", s, s.Replicas))
		}
		if err := (primary.SyncPolicy{Mode: s.Mode}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("benchtable: setup %q: %w", s, err))
		}
	}
	return errors.Join(errs...)
}

// Row is one measured row.
type Row struct {
	Setup    string         `json:"setup"`
	Replicas int            `json:"replicas"`
	Mode     string         `json:"mode"`
	Path     string         `json:"path"`
	Workload Workload       `json:"workload"`
	Result   loadgen.Result `json:"result"`
	// Ratio is commits/s over the local-only row's of the same workload
	// and path, P50Ratio the p50 commit latency over that row's. The
	// local-only row of a Config.Connect path is compared with the
	// in-process one: its ratios are the network client's cost.
	Ratio    float64 `json:"ratio"`
	P50Ratio float64 `json:"p50_ratio"`
	// Lag is how long after the workload stopped the slowest replica
	// still took to apply the last commit.
	Lag time.Duration `json:"lag"`
	// CPUPerCommit is the CPU time (user and system, of every node, the
	// clients and the runtime, all in this process) the workload used per
	// commit; 0 where it cannot be measured. With every node on one
	// machine, it bounds what the machine's cores can commit.
	CPUPerCommit time.Duration `json:"cpu_per_commit"`
	// SyncsPerCommit is the sync rounds of the primary's store (of the
	// local store in local rows) per commit, SyncRound their mean
	// duration: the rounds run one after another, so SyncsPerCommit ×
	// SyncRound close to the time between commits (1 / commits/s) means the
	// row is bound by the disk's syncs. ReplicaSyncsPerCommit and
	// ReplicaSyncRound are the same over the replicas' stores: their
	// rounds summed (with two replicas, each applying every commit, twice
	// one replica's), their mean duration over all of them; they count
	// until the replicas applied the last commit. 0 where there are no
	// such stores or no rounds.
	// Rounds is how many measurements the row combines (Config.Rounds).
	// With more than one, Ratio and P50Ratio are the medians of the
	// rounds' ratios, RatioMin and RatioMax the range of the commit
	// ratios, Result's counts and CPUPerCommit and the sync figures are
	// pooled over the rounds, its latencies the medians of the rounds',
	// and Lag the longest.
	Rounds                int           `json:"rounds"`
	RatioMin              float64       `json:"ratio_min,omitempty"`
	RatioMax              float64       `json:"ratio_max,omitempty"`
	SyncsPerCommit        float64       `json:"syncs_per_commit"`
	SyncRound             time.Duration `json:"sync_round"`
	ReplicaSyncsPerCommit float64       `json:"replica_syncs_per_commit"`
	ReplicaSyncRound      time.Duration `json:"replica_sync_round"`
}

// Transfer is a catch-up or resync measurement.
type Transfer struct {
	Txns    uint64        `json:"txns"`
	Bytes   uint64        `json:"bytes"`
	Elapsed time.Duration `json:"elapsed"`
}

// TxnsPerSec is transactions applied per second.
func (t Transfer) TxnsPerSec() float64 { return rate(float64(t.Txns), t.Elapsed) }

// MBPerSec is object data applied per second, in MB (10^6 bytes).
func (t Transfer) MBPerSec() float64 { return rate(float64(t.Bytes)/1e6, t.Elapsed) }

func rate(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

// Target is one of the performance targets and how this run did.
type Target struct {
	Name   string  `json:"name"`
	Want   string  `json:"want"`
	Got    float64 `json:"got"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
	Source string  `json:"source"` // the row it comes from; empty if not measured
	// InProcess is a ratio target's measure against the in-process local
	// badgerstore, where the row went through the network client (and
	// Got is against the local badgerstore behind that client); 0
	// otherwise.
	InProcess float64 `json:"in_process,omitempty"`
	// Mirror is the same measure of the mirror row (two local stores,
	// every commit on both, no replication protocol) of the same
	// workload and path, where it was measured; 0 otherwise. It is what
	// two durable copies of every commit allow on this machine: a
	// replicated row cannot be expected to beat it.
	Mirror float64 `json:"mirror,omitempty"`
}

// Table is the result of a run.
type Table struct {
	Rows    []Row     `json:"rows"`
	CatchUp *Transfer `json:"catch_up,omitempty"`
	Resync  *Transfer `json:"resync,omitempty"`
	Targets []Target  `json:"targets"`
}

// Run measures every row and the transfers, and evaluates the targets. It
// returns the rows measured so far with the first error.
func Run(ctx context.Context, cfg Config) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	r := &runner{cfg: cfg, t: &Table{}}
	err := r.run(ctx)
	r.t.Targets = evaluate(r.t)
	return r.t, err
}

type runner struct {
	cfg Config
	t   *Table
}

func (r *runner) run(ctx context.Context) error {
	for _, w := range r.cfg.Workloads {
		rounds := make([][]Row, 0, r.cfg.Rounds)
		for i := range r.cfg.Rounds {
			rows, err := r.round(ctx, w, i)
			if len(rows) > 0 {
				rounds = append(rounds, rows)
			}
			if err != nil {
				r.t.Rows = append(r.t.Rows, combineRounds(rounds)...)
				return err
			}
		}
		r.t.Rows = append(r.t.Rows, combineRounds(rounds)...)
	}
	if r.cfg.CatchUpTxns > 0 {
		return r.transfers(ctx)
	}
	return nil
}

// round measures every row of workload w once, the baselines first, and
// returns them in the table's order (with the rows measured before an
// error).
func (r *runner) round(ctx context.Context, w Workload, i int) ([]Row, error) {
	var rows []Row
	add := func(s Setup, base *Row, connect bool) (Row, error) {
		row, err := r.row(ctx, s, w, base, connect, i)
		if err == nil {
			rows = append(rows, row)
		}
		return row, err
	}
	base, err := add(Setup{Local: true}, nil, false)
	if err != nil {
		return rows, err
	}
	if r.cfg.Connect != nil {
		if base, err = add(Setup{Local: true}, &base, true); err != nil {
			return rows, err
		}
	}
	for _, s := range r.cfg.Setups {
		if s.Local {
			continue
		}
		if _, err := add(s, &base, r.cfg.Connect != nil); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// tempDir makes the directory of one measurement; the caller removes it.
func (r *runner) tempDir(name string) (string, error) {
	return os.MkdirTemp(r.cfg.Dir, "repld-bench-"+name+"-")
}

// row measures workload w on setup s in round i, through Config.Connect
// if connect is set; base is the row its ratios are to (nil while
// measuring the first baseline).
func (r *runner) row(ctx context.Context, s Setup, w Workload, base *Row, connect bool, i int) (Row, error) {
	row := Row{Setup: s.String(), Replicas: s.Replicas, Mode: s.Mode.String(), Workload: w, Ratio: 1, P50Ratio: 1, Rounds: 1}
	if s.Local || s.Replicas == 0 {
		row.Mode = "-"
	}
	dir, err := r.tempDir("row")
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	lc := loadgen.Config{Clients: w.Clients, Duration: r.cfg.RowDuration, ObjectSize: w.ObjectSize, ObjectsPerTxn: w.ObjectsPerTxn}
	switch {
	case s.Local:
		err = r.local(ctx, dir, lc, &row, connect)
	case s.Mirror:
		err = r.mirrored(ctx, dir, lc, &row, connect)
	default:
		err = r.replicated(ctx, dir, s, lc, &row, connect)
	}
	if err != nil {
		return row, fmt.Errorf("%s, %s with %d clients: %w", s, w.Name, w.Clients, err)
	}
	if base != nil {
		row.Ratio = ratio(row.Result.CommitsPerSec(), base.Result.CommitsPerSec())
		row.P50Ratio = ratio(float64(row.Result.Commit.P50), float64(base.Result.Commit.P50))
	}
	roundUS, commitsPerSync := syncCells(row)
	fmt.Fprintf(r.cfg.Progress, "%s%-22s %-8s %-7s %2d clients: %9.0f commits/s (×%.2f), p50 %v, lag %v, CPU %v per commit, sync rounds (primary/replica) %s µs, %s commits each\n",
		r.roundPrefix(i), row.Setup, row.Path, w.Name, w.Clients, row.Result.CommitsPerSec(), row.Ratio, row.Result.Commit.P50, row.Lag.Round(time.Millisecond), row.CPUPerCommit.Round(time.Microsecond),
		roundUS, commitsPerSync)
	return row, nil
}

// local runs lc against a badgerstore alone, in process or through
// Config.Connect.
func (r *runner) local(ctx context.Context, dir string, lc loadgen.Config, row *Row, connect bool) (err error) {
	store, err := openBadger(ctx, dir, r.cfg.Logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, store.Close()) }()
	row.Path = "local"
	return r.runLocal(ctx, store, syncMeter{primary: store}, lc, row, connect)
}

// runLocal runs lc against target, a setup of local stores whose sync
// rounds m reads, in process or through Config.Connect.
func (r *runner) runLocal(ctx context.Context, target storage.Storage, m syncMeter, lc loadgen.Config, row *Row, connect bool) (err error) {
	s, release, err := r.connect(ctx, target, connect, row)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, release()) }()
	before := m.read()
	if err := runLoad(ctx, s, lc, row); err != nil {
		return err
	}
	m.record(before, row)
	return nil
}

// mirrored runs lc against a mirror of two badgerstores, in process or
// through Config.Connect.
func (r *runner) mirrored(ctx context.Context, dir string, lc loadgen.Config, row *Row, connect bool) (err error) {
	var stores [2]*badgerstore.Store
	for i, name := range []string{"a", "b"} {
		if stores[i], err = openBadger(ctx, filepath.Join(dir, name), r.cfg.Logger); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stores[i].Close()) }()
	}
	row.Path, row.Replicas = "local", 1
	return r.runLocal(ctx, newMirror(stores[0], stores[1]), syncMeter{primary: stores[0], replicas: stores[1:]}, lc, row, connect)
}

// connect returns the storage a row's clients use: store itself, or, if
// connect is set, what Config.Connect makes of it (and sets the row's
// path); release releases it.
func (r *runner) connect(ctx context.Context, store storage.Storage, connect bool, row *Row) (s storage.Storage, release func() error, err error) {
	if !connect {
		return store, func() error { return nil }, nil
	}
	if s, row.Path, release, err = r.cfg.Connect(ctx, store); err != nil {
		return nil, nil, fmt.Errorf("connect: %w", err)
	}
	return s, release, nil
}

// runLoad runs lc against store into row, with its CPU time per commit.
func runLoad(ctx context.Context, store storage.Storage, lc loadgen.Config, row *Row) (err error) {
	before, ok := cputime.Process()
	row.Result, err = loadgen.Run(ctx, store, lc)
	if after, ok2 := cputime.Process(); ok && ok2 && row.Result.Commits > 0 {
		row.CPUPerCommit = (after - before) / time.Duration(row.Result.Commits)
	}
	return err
}

// syncMeter reads the sync rounds of a row's stores: the primary's (or
// the local one) and its replicas'.
type syncMeter struct {
	primary  *badgerstore.Store
	replicas []*badgerstore.Store
}

// syncCounts are the sync rounds of a row's stores at one time: the
// primary's, and the sum of the replicas'.
type syncCounts struct {
	primary, replicas badgerstore.SyncStats
}

func (m syncMeter) read() syncCounts {
	c := syncCounts{primary: m.primary.SyncStats()}
	for _, s := range m.replicas {
		st := s.SyncStats()
		c.replicas.Rounds += st.Rounds
		c.replicas.Time += st.Time
	}
	return c
}

// record sets row's sync fields from the rounds since before, per commit
// of the row.
func (m syncMeter) record(before syncCounts, row *Row) {
	after := m.read()
	row.SyncsPerCommit, row.SyncRound = syncsPer(before.primary, after.primary, row.Result.Commits)
	if len(m.replicas) > 0 {
		row.ReplicaSyncsPerCommit, row.ReplicaSyncRound = syncsPer(before.replicas, after.replicas, row.Result.Commits)
	}
}

// syncsPer returns the rounds from before to after per commit, and their
// mean duration; zeros without commits or rounds.
func syncsPer(before, after badgerstore.SyncStats, commits uint64) (float64, time.Duration) {
	rounds := after.Rounds - before.Rounds
	if commits == 0 || rounds == 0 {
		return 0, 0
	}
	return float64(rounds) / float64(commits), (after.Time - before.Time) / time.Duration(rounds)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// replicated runs lc against a primary with s.Replicas replicas, through
// Config.Connect if connect is set, and measures the replicas' lag at the
// end.
func (r *runner) replicated(ctx context.Context, dir string, s Setup, lc loadgen.Config, row *Row, connect bool) (err error) {
	c, err := startCluster(ctx, dir, s.Mode, s.Replicas, r.cfg.Logger)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer func() { err = errors.Join(err, c.close()) }()
	row.Path = "embedded"
	store, release, err := r.connect(ctx, c.p, connect, row)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, release()) }()
	m := c.syncMeter()
	before := m.read()
	if err := runLoad(ctx, store, lc, row); err != nil {
		return err
	}
	end := time.Now()
	if err := c.waitApplied(ctx, row.Result.LastTID); err != nil {
		return err
	}
	row.Lag = time.Since(end)
	// After the wait: replicas that lag behind still sync for the row's
	// commits.
	m.record(before, row)
	return nil
}

// transfers measures the catch-up of a stopped replica and the full resync
// of an empty one.
func (r *runner) transfers(ctx context.Context) (err error) {
	dir, err := r.tempDir("transfer")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c, err := startCluster(ctx, dir, primary.Async, 1, r.cfg.Logger)
	if err != nil {
		return fmt.Errorf("catch-up: start: %w", err)
	}
	defer func() { err = errors.Join(err, c.close()) }()

	r1 := c.reps[0]
	if err := c.stopReplica(r1); err != nil {
		return fmt.Errorf("catch-up: stop replica: %w", err)
	}
	small, err := loadgen.Run(ctx, c.p, loadgen.Config{Clients: 16, Transactions: r.cfg.CatchUpTxns, ObjectSize: 100})
	if err != nil {
		return fmt.Errorf("catch-up: commit %d transactions: %w", r.cfg.CatchUpTxns, err)
	}
	start := time.Now()
	if _, err := c.startReplica(ctx, r1.name); err != nil {
		return fmt.Errorf("catch-up: restart replica: %w", err)
	}
	if err := c.waitApplied(ctx, small.LastTID); err != nil {
		return fmt.Errorf("catch-up: %w", err)
	}
	r.t.CatchUp = &Transfer{Txns: small.Commits, Bytes: small.Bytes, Elapsed: time.Since(start)}
	fmt.Fprintf(r.cfg.Progress, "catch-up of %d transactions: %.0f txns/s\n", small.Commits, r.t.CatchUp.TxnsPerSec())

	total := *r.t.CatchUp
	last := small.LastTID
	if r.cfg.ResyncLarge > 0 {
		large, err := loadgen.Run(ctx, c.p, loadgen.Config{Transactions: r.cfg.ResyncLarge, ObjectSize: largeObject})
		if err != nil {
			return fmt.Errorf("resync: commit %d large objects: %w", r.cfg.ResyncLarge, err)
		}
		total.Txns += large.Commits
		total.Bytes += large.Bytes
		last = large.LastTID
	}
	start = time.Now()
	if _, err := c.startReplica(ctx, "fresh"); err != nil {
		return fmt.Errorf("resync: start replica: %w", err)
	}
	if err := c.waitApplied(ctx, last); err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	total.Elapsed = time.Since(start)
	r.t.Resync = &total
	fmt.Fprintf(r.cfg.Progress, "full resync of %d transactions, %.0f MB: %.0f txns/s, %.0f MB/s\n",
		total.Txns, float64(total.Bytes)/1e6, total.TxnsPerSec(), total.MBPerSec())
	return nil
}
