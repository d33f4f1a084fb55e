package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/repld/repld/internal/benchtable"
	"github.com/repld/repld/internal/loadgen"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
)

// benchOptions are the flags of `repld bench`.
type benchOptions struct {
	primaries     []string
	replicas      []string
	replicasAdmin []string
	clients       int
	duration      time.Duration
	objectSize    int
	objectsPerTxn int
	readRatio     float64
	lagWait       time.Duration
	json          bool
}

func newBenchCmd(g *globalOptions) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench --primary HOST:PORT [--replicas HOST:PORT,...] [flags]",
		Short: "Run a workload against running nodes over the client protocol",
		Long: `Run a workload against a running primary (and its replicas, for reads) over
the network client: --clients clients each commit transactions of
--objects-per-txn objects of --object-size bytes for --duration, each
rewriting only objects of its own (no conflicts). With --read-ratio R a
fraction R of the operations load one of the client's objects instead; reads
may go to the replicas and must never return older data than the client
committed.

It prints commits/s, objects/s, MB/s, the commit latency p50, p99 and p999,
and at the end the replicas' lag: from each replica's admin /status when
--replicas-admin is given (with how long after the workload each replica
still needed to apply its last commit), otherwise from the client's view.
--json prints one JSON object instead.

The bench writes data: point it at a cluster made for benchmarking.`,
		Example: `  repld bench --primary 127.0.0.1:7100 --clients 16 --duration 10s
  repld bench --primary 127.0.0.1:7100 --replicas 127.0.0.1:7101,127.0.0.1:7102 \
      --replicas-admin 127.0.0.1:7081,127.0.0.1:7082 --read-ratio 0.8 --json`,
		Args: cobra.NoArgs,
		RunE: g.runE(o.validate, func(cmd *cobra.Command, log *zap.Logger) error {
			return runBench(cmd.Context(), o, cmd.OutOrStdout(), log)
		}),
	}
	fs := cmd.Flags()
	fs.StringSliceVar(&o.primaries, "primary", nil, "client address of the primary, host:port; several (comma-separated) if a promotion may move it; required")
	fs.StringSliceVar(&o.replicas, "replicas", nil, "client addresses of replicas for reads, host:port,...")
	fs.StringSliceVar(&o.replicasAdmin, "replicas-admin", nil, "admin addresses of the replicas, host:port,..., to report their lag from /status")
	fs.IntVar(&o.clients, "clients", 1, "number of concurrent clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long the workload runs")
	fs.IntVar(&o.objectSize, "object-size", 100, "bytes per object")
	fs.IntVar(&o.objectsPerTxn, "objects-per-txn", 1, "objects each transaction writes")
	fs.Float64Var(&o.readRatio, "read-ratio", 0, "fraction of operations, from 0 up to 1, that are reads")
	fs.DurationVar(&o.lagWait, "lag-wait", 10*time.Second, "how long to wait, after the workload, for the replicas to apply its last commit")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of text")
	return cmd
}

func (o *benchOptions) loadgenConfig() loadgen.Config {
	return loadgen.Config{
		Clients:       o.clients,
		Duration:      o.duration,
		ObjectSize:    o.objectSize,
		ObjectsPerTxn: o.objectsPerTxn,
		ReadRatio:     o.readRatio,
	}
}

func (o *benchOptions) validate() error {
	var errs []error
	if len(o.primaries) == 0 {
		errs = append(errs, errors.New("--primary is required: give the primary's client address, e.g. 127.0.0.1:7100 (or set REPLD_PRIMARY)"))
	}
	for flag, addrs := range map[string][]string{"--primary": o.primaries, "--replicas": o.replicas, "--replicas-admin": o.replicasAdmin} {
		for _, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("%s %q is not host:port (%v); use e.g. 127.0.0.1:7100", flag, a, err))
			}
		}
	}
	if o.clients < 1 {
		errs = append(errs, fmt.Errorf("--clients %d: use 1 or more", o.clients))
	}
	if o.duration <= 0 {
		errs = append(errs, fmt.Errorf("--duration %v: use a positive duration such as 10s", o.duration))
	}
	if o.objectSize < 1 || o.objectSize > loadgen.MaxObjectSize {
		errs = append(errs, fmt.Errorf("--object-size %d: use 1 to %d bytes", o.objectSize, loadgen.MaxObjectSize))
	}
	if o.objectsPerTxn < 1 {
		errs = append(errs, fmt.Errorf("--objects-per-txn %d: use 1 or more", o.objectsPerTxn))
	}
	if !(o.readRatio >= 0 && o.readRatio < 1) {
		errs = append(errs, fmt.Errorf("--read-ratio %v: use a fraction from 0 up to (not including) 1, e.g. 0.8", o.readRatio))
	}
	if o.lagWait < 0 {
		errs = append(errs, fmt.Errorf("--lag-wait %v: use 0 (do not wait) or a positive duration", o.lagWait))
	}
	if errs == nil {
		// Cross-check the rest (limits) with the engine's own rules.
		errs = append(errs, o.loadgenConfig().Validate())
	}
	return errors.Join(errs...)
}

// benchReport is what `repld bench --json` prints.
type benchReport struct {
	Clients       int           `json:"clients"`
	DurationSec   float64       `json:"duration_sec"`
	Commits       uint64        `json:"commits"`
	NotReplicated uint64        `json:"not_replicated"`
	Reads         uint64        `json:"reads"`
	CommitsPerSec float64       `json:"commits_per_sec"`
	ObjectsPerSec float64       `json:"objects_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"`
	ReadsPerSec   float64       `json:"reads_per_sec"`
	LatencyUS     latencyUS     `json:"latency_us"`
	ReadLatencyUS latencyUS     `json:"read_latency_us"`
	LastTID       storage.TID   `json:"last_tid"`
	ReplicaLag    []replicaLag  `json:"replica_lag"`
	Path          string        `json:"path"`
	Source        string        `json:"replica_lag_source"`
	Elapsed       time.Duration `json:"-"`
}

// latencyUS is a latency summary in microseconds.
type latencyUS struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

func toUS(l loadgen.Latency) latencyUS {
	f := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return latencyUS{P50: f(l.P50), P99: f(l.P99), P999: f(l.P999)}
}

// replicaLag is one replica at the end of the workload.
type replicaLag struct {
	Replica string      `json:"replica"`
	Name    string      `json:"name,omitempty"`
	State   string      `json:"state,omitempty"`
	LastTID storage.TID `json:"last_tid"`
	// LagSeconds is the replica's own lag behind the primary, by TIDs, when
	// the workload ended.
	LagSeconds float64 `json:"lag_seconds"`
	// CaughtUpMS is how long after the workload ended the replica had the
	// workload's last commit; -1 if it did not within --lag-wait.
	CaughtUpMS float64 `json:"caught_up_ms"`
	Error      string  `json:"error,omitempty"`
}

func runBench(ctx context.Context, o *benchOptions, out io.Writer, log *zap.Logger) error {
	c, path, err := openBenchClient(ctx, o, log)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	res, err := loadgen.Run(ctx, c, o.loadgenConfig())
	if err != nil {
		return fmt.Errorf("bench after %d commits: %w", res.Commits, err)
	}
	rep := benchReport{
		Clients: res.Clients, DurationSec: res.Elapsed.Seconds(), Elapsed: res.Elapsed,
		Commits: res.Commits, NotReplicated: res.NotReplicated, Reads: res.Reads,
		CommitsPerSec: res.CommitsPerSec(), ObjectsPerSec: res.ObjectsPerSec(), MBPerSec: res.MBPerSec(), ReadsPerSec: res.ReadsPerSec(),
		LatencyUS: toUS(res.Commit), ReadLatencyUS: toUS(res.Read), LastTID: res.LastTID, Path: path,
		ReplicaLag: []replicaLag{},
	}
	if len(o.replicasAdmin) > 0 {
		rep.Source = "admin /status"
		rep.ReplicaLag = adminLag(ctx, o.replicasAdmin, res.LastTID, o.lagWait)
	} else {
		rep.Source = clientLag(c, len(o.replicas))
	}
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printBench(out, rep)
}

func printBench(out io.Writer, r benchReport) error {
	fmt.Fprintf(out, "%d clients for %v over %s: %d commits", r.Clients, r.Elapsed.Round(time.Millisecond), r.Path, r.Commits)
	if r.NotReplicated > 0 {
		fmt.Fprintf(out, " (%d not replicated as the sync policy asks)", r.NotReplicated)
	}
	fmt.Fprintf(out, ", %d reads\n", r.Reads)
	fmt.Fprintf(out, "commits/s   %.0f\nobjects/s   %.0f\nMB/s        %.2f\n", r.CommitsPerSec, r.ObjectsPerSec, r.MBPerSec)
	fmt.Fprintf(out, "latency µs  p50 %.0f  p99 %.0f  p999 %.0f\n", r.LatencyUS.P50, r.LatencyUS.P99, r.LatencyUS.P999)
	if r.Reads > 0 {
		fmt.Fprintf(out, "reads/s     %.0f\nread µs     p50 %.0f  p99 %.0f  p999 %.0f\n", r.ReadsPerSec, r.ReadLatencyUS.P50, r.ReadLatencyUS.P99, r.ReadLatencyUS.P999)
	}
	if len(r.ReplicaLag) == 0 {
		fmt.Fprintf(out, "replica lag: %s\n", r.Source)
		return nil
	}
	fmt.Fprintf(out, "\nreplica lag at the end (from %s; the workload's last commit is %s):\n", r.Source, r.LastTID)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tNAME\tSTATE\tLAST TID\tLAG (S)\tHAD LAST COMMIT AFTER")
	for _, l := range r.ReplicaLag {
		if l.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%s\n", l.Replica, l.Error)
			continue
		}
		after := "not within --lag-wait"
		if l.CaughtUpMS >= 0 {
			after = fmt.Sprintf("%.1f ms", l.CaughtUpMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.3f\t%s\n", l.Replica, l.Name, l.State, l.LastTID, l.LagSeconds, after)
	}
	return tw.Flush()
}

// adminLag asks each replica's admin /status for its last TID, polling
// until it has last or wait (counted from the call, for all replicas
// together) has passed; every replica is asked at least once.
func adminLag(ctx context.Context, addrs []string, last storage.TID, wait time.Duration) []replicaLag {
	end := time.Now()
	deadline := end.Add(wait)
	hc := &http.Client{Timeout: 5 * time.Second}
	out := make([]replicaLag, len(addrs))
	for i, addr := range addrs {
		l := replicaLag{Replica: addr, CaughtUpMS: -1}
		for first := true; ; first = false {
			st, err := replicaStatus(ctx, hc, addr)
			if err != nil {
				if first {
					l.Error = err.Error()
				}
				break
			}
			if first {
				l.LagSeconds = st.LagSeconds
			}
			l.Name, l.State, l.LastTID = st.Name, string(st.State), st.LastTID
			if st.LastTID >= last {
				l.CaughtUpMS = float64(time.Since(end)) / float64(time.Millisecond)
				break
			}
			if time.Now().After(deadline) || !sleepCtx(ctx, 10*time.Millisecond) {
				break
			}
		}
		out[i] = l
	}
	return out
}

func replicaStatus(ctx context.Context, hc *http.Client, addr string) (replica.Status, error) {
	var st replica.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /status: %s", resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return st, fmt.Errorf("GET /status: %w", err)
	}
	if st.Role != "replica" {
		return st, fmt.Errorf("GET /status: role %q, not a replica (is %s a replica's admin address?)", st.Role, addr)
	}
	return st, nil
}

// benchTableOptions are the flags of `repld bench-table`.
type benchTableOptions struct {
	rowDuration time.Duration
	rounds      int
	catchUp     int
	resyncLarge int
	workloads   []string
	setups      []string
	cpuProfile  string
	path        *choiceValue
	dir         string
	json        bool
}

func newBenchTableCmd(g *globalOptions) *cobra.Command {
	o := &benchTableOptions{path: newChoice("remote", "remote", "embedded")}
	cmd := &cobra.Command{
		Use:   "bench-table",
		Short: "Run the project's benchmark table in this process (make bench)",
		Long: `Run repld's benchmark table in this process, on loopback TCP with every store a
durable badgerstore in a temporary directory: the local badgerstore alone
(the baseline), the mirror (two local badgerstores, every commit on both,
no replication protocol: the control), then a primary with 0, 1 and 2
replicas in each sync mode (k=1), under small (1 × 100 B), medium (10 × 1
KiB) and large (1 × 16 MiB) transactions with 1 and 16 clients (large with
1 client), each row with its ratio to the local-only row of the same
workload and path. Each workload's rows are measured --rounds times, a
round after another, and each ratio is the median of the rounds' ratios,
so that a slow spell of the shared machine during one row does not decide
it. Then the
catch-up speed of a replica stopped for --catch-up-txns transactions and the
full resync speed of an empty replica; then the issue's targets. Replicated
rows reach the primary through the network client (--path remote; the
local badgerstore is then measured both in process and behind the same
client server, and the replicated rows are compared with the latter) or,
to tell the client protocol's cost from replication's, as an embedded
primary (--path embedded). Progress goes to stderr, the table to stdout.
The full table takes about seven minutes and loads the whole machine:
compare numbers within one run only.`,
		Example: `  make bench
  repld bench-table --rounds 1 --row-duration 1s --catch-up-txns 10000
  repld bench-table --workloads small --path embedded
  repld bench-table --json > bench.json`,
		Args: cobra.NoArgs,
		RunE: g.runE(nil, func(cmd *cobra.Command, log *zap.Logger) error {
			cfg, err := o.config(cmd.ErrOrStderr(), quietUnlessAsked(cmd, log))
			if err != nil {
				return err
			}
			stop, err := startCPUProfile(o.cpuProfile)
			if err != nil {
				return err
			}
			tab, err := benchtable.Run(cmd.Context(), cfg)
			if perr := stop(); perr != nil {
				log.Warn("cpu profile", zap.Error(perr))
			}
			if err != nil {
				return fmt.Errorf("benchmark table: %w", err)
			}
			if o.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(tab)
			}
			return tab.Print(cmd.OutOrStdout())
		}),
	}
	fs := cmd.Flags()
	fs.DurationVar(&o.rowDuration, "row-duration", benchtable.DefaultRowDuration, "how long each row's workload runs, in each round")
	fs.IntVar(&o.rounds, "rounds", benchtable.DefaultRounds, "how many times each workload's rows are measured, a round after another; ratios are the medians of the rounds' ratios")
	fs.IntVar(&o.catchUp, "catch-up-txns", benchtable.DefaultCatchUpTxns, "transactions committed while a replica is stopped (negative: skip catch-up and resync)")
	fs.IntVar(&o.resyncLarge, "resync-large", benchtable.DefaultResyncLarge, "16 MiB objects added before the full resync (negative: none)")
	fs.StringSliceVar(&o.workloads, "workloads", nil, "run only these workloads: small, medium, large (default all)")
	fs.StringSliceVar(&o.setups, "setups", nil, "run only these setups besides the local baseline: mirror (two local stores, every commit to both), 0 (primary without replica), or replicas/mode such as 1/applied (default all)")
	fs.StringVar(&o.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
	addChoice(cmd, fs, o.path, "path", "how replicated rows reach the primary: the network client or the embedded primary")
	fs.StringVar(&o.dir, "dir", "", "directory for the temporary stores (default: the system's temporary directory)")
	fs.BoolVar(&o.json, "json", false, "print the table as JSON")
	_ = cmd.MarkFlagDirname("dir")
	return cmd
}

func (o *benchTableOptions) config(progress io.Writer, log *zap.Logger) (benchtable.Config, error) {
	var workloads []benchtable.Workload
	for _, name := range o.workloads {
		n := len(workloads)
		for _, w := range benchtable.DefaultWorkloads() {
			if w.Name == name {
				workloads = append(workloads, w)
			}
		}
		if len(workloads) == n {
			return benchtable.Config{}, fmt.Errorf("--workloads %q: use small, medium or large", name)
		}
	}
	var setups []benchtable.Setup
	for _, name := range o.setups {
		s, err := parseSetup(name)
		if err != nil {
			return benchtable.Config{}, err
		}
		setups = append(setups, s)
	}
	cfg := benchtable.Config{
		Dir:         o.dir,
		Workloads:   workloads,
		Setups:      setups,
		RowDuration: o.rowDuration,
		Rounds:      o.rounds,
		CatchUpTxns: o.catchUp,
		ResyncLarge: o.resyncLarge,
		Progress:    progress,
		Logger:      log,
	}
	if o.path.String() == "remote" {
		cfg.Connect = benchConnect(log)
	}
	return cfg, nil
}

// parseSetup reads a --setups entry: "mirror" for two local stores
// mirrored, "0" for a primary without replica, or "N/MODE" for N replicas
// in sync mode MODE.
func parseSetup(name string) (benchtable.Setup, error) {
	if name == "mirror" {
		return benchtable.Setup{Mirror: true}, nil
	}
	n, mode, found := strings.Cut(name, "/")
	replicas, err := strconv.Atoi(n)
	if err != nil || replicas < 0 || replicas > 16 || found == (replicas == 0) {
		return benchtable.Setup{}, fmt.Errorf("--setups %q: use mirror, 0, or replicas/mode such as 1/applied", name)
	}
	s := benchtable.Setup{Replicas: replicas}
	if found {
		if s.Mode, err = primary.ParseMode(mode); err != nil {
			return benchtable.Setup{}, fmt.Errorf("--setups %q: %w", name, err)
		}
	}
	return s, nil
}

// startCPUProfile starts profiling into path, if set, and returns what
// stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("--cpu-profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// sleepCtx waits d, or less if ctx ends first; it reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
