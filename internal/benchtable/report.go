package benchtable

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/repld/repld/primary"
)

// find returns the row of setup s and workload name with clients clients
// (on path, unless path is empty).
func (t *Table) find(s Setup, name string, clients int, path string) *Row {
	for i := range t.Rows {
		r := &t.Rows[i]
		if r.Setup == s.String() && r.Workload.Name == name && r.Workload.Clients == clients && (path == "" || r.Path == path) {
			return r
		}
	}
	return nil
}

// evaluate checks the targets against the measured rows; a target
// whose row was not measured is reported as not met, with no source.
func evaluate(t *Table) []Target {
	applied1 := Setup{Replicas: 1, Mode: primary.Applied}
	var out []Target
	add := func(name, want, unit string, row *Row, got func(*Row) float64, met func(float64) bool) *Target {
		tg := Target{Name: name, Want: want, Unit: unit}
		if row != nil {
			tg.Got = got(row)
			tg.Met = met(tg.Got)
			tg.Source = fmt.Sprintf("%s, %s, %d clients, %s", row.Setup, row.Workload.Name, row.Workload.Clients, row.Path)
			if row.Rounds > 1 {
				tg.Source += fmt.Sprintf(", median of %d rounds", row.Rounds)
			}
		}
		out = append(out, tg)
		return &out[len(out)-1]
	}
	// inProcess sets tg.InProcess to row's measure against the
	// in-process local row, when row went through the network client.
	inProcess := func(tg *Target, row *Row, measure func(row, local *Row) float64) {
		if row == nil || row.Path == "embedded" {
			return
		}
		if local := t.find(Setup{Local: true}, row.Workload.Name, row.Workload.Clients, "local"); local != nil {
			tg.InProcess = measure(row, local)
		}
	}
	// mirror sets tg.Mirror to got of the mirror row of row's workload
	// and path (the in-process one for an embedded primary, which is
	// compared with the in-process local row too).
	mirror := func(tg *Target, row *Row, got func(*Row) float64) {
		if row == nil {
			return
		}
		path := row.Path
		if path == "embedded" {
			path = "local"
		}
		if m := t.find(Setup{Mirror: true}, row.Workload.Name, row.Workload.Clients, path); m != nil {
			tg.Mirror = got(m)
		}
	}
	small16 := t.find(applied1, "small", 16, "")
	commitRatio := func(r *Row) float64 { return r.Ratio }
	tg := add("applied, 1 replica, small txns, 16 clients: commits/s vs local-only on the same path", ">= 0.70", "×",
		small16, commitRatio, func(v float64) bool { return v >= 0.7 })
	inProcess(tg, small16, func(r, l *Row) float64 { return ratio(r.Result.CommitsPerSec(), l.Result.CommitsPerSec()) })
	mirror(tg, small16, commitRatio)
	small1 := t.find(applied1, "small", 1, "")
	p50Ratio := func(r *Row) float64 { return r.P50Ratio }
	tg = add("applied, 1 replica, 1 client: p50 latency vs local-only on the same path", "<= 3.00", "×",
		small1, p50Ratio, func(v float64) bool { return v > 0 && v <= 3 })
	inProcess(tg, small1, func(r, l *Row) float64 { return ratio(float64(r.Result.Commit.P50), float64(l.Result.Commit.P50)) })
	mirror(tg, small1, p50Ratio)
	large1 := t.find(applied1, "large", 1, "")
	mbPerSec := func(r *Row) float64 { return r.Result.MBPerSec() }
	tg = add("16 MiB objects replicated (applied, 1 replica)", ">= 500", "MB/s",
		large1, mbPerSec, func(v float64) bool { return v >= 500 })
	mirror(tg, large1, mbPerSec)
	cu := Target{Name: "catch-up of a stopped replica", Want: ">= 50000", Unit: "txns/s"}
	if t.CatchUp != nil {
		cu.Got = t.CatchUp.TxnsPerSec()
		cu.Met = cu.Got >= 50000
		cu.Source = fmt.Sprintf("%d transactions", t.CatchUp.Txns)
	}
	return append(out, cu)
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

// Print writes the table for people: the rows, the transfers and the
// targets.
func (t *Table) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// With several rounds, the range of each row's commit ratios follows
	// its median.
	rounds := slices.ContainsFunc(t.Rows, func(r Row) bool { return r.Rounds > 1 })
	ratioHead := "RATIO"
	if rounds {
		ratioHead = "RATIO\t(MIN–MAX)"
	}
	fmt.Fprintf(tw, "SETUP\tPATH\tWORKLOAD\tCLIENTS\tCOMMITS/S\t%s\tOBJECTS/S\tMB/S\tP50 µs\tP99 µs\tP999 µs\tP50 RATIO\tLAG ms\tCPU µs/COMMIT\tSYNC µs\tCOMMITS/SYNC\t\n", ratioHead)
	for _, r := range t.Rows {
		res := r.Result
		lag := "-"
		if r.Replicas > 0 {
			lag = fmt.Sprintf("%.1f", float64(r.Lag)/float64(time.Millisecond))
		}
		cpu := "-"
		if r.CPUPerCommit > 0 {
			cpu = us(r.CPUPerCommit)
		}
		roundUS, commitsPerSync := syncCells(r)
		ratioCell := fmt.Sprintf("%.2f", r.Ratio)
		if rounds {
			ratioCell += fmt.Sprintf("\t(%.2f–%.2f)", r.RatioMin, r.RatioMax)
			if r.Rounds <= 1 {
				ratioCell = fmt.Sprintf("%.2f\t-", r.Ratio)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%s\t%.0f\t%.1f\t%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t\n",
			r.Setup, r.Path, workloadName(r.Workload), r.Workload.Clients,
			res.CommitsPerSec(), ratioCell, res.ObjectsPerSec(), res.MBPerSec(),
			us(res.Commit.P50), us(res.Commit.P99), us(res.Commit.P999), r.P50Ratio, lag, cpu,
			roundUS, commitsPerSync)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if t.CatchUp != nil {
		fmt.Fprintf(w, "\ncatch-up: a replica stopped for %d transactions caught up in %v: %.0f txns/s\n",
			t.CatchUp.Txns, t.CatchUp.Elapsed.Round(time.Millisecond), t.CatchUp.TxnsPerSec())
	}
	if t.Resync != nil {
		fmt.Fprintf(w, "full resync: an empty replica copied %d transactions (%.0f MB of object data) in %v: %.0f txns/s, %.0f MB/s\n",
			t.Resync.Txns, float64(t.Resync.Bytes)/1e6, t.Resync.Elapsed.Round(time.Millisecond), t.Resync.TxnsPerSec(), t.Resync.MBPerSec())
	}
	fmt.Fprintln(w, "\ntargets:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, tg := range t.Targets {
		verdict, got := "MISSED", "not measured"
		if tg.Met {
			verdict = "met"
		}
		if tg.Source != "" {
			got = fmt.Sprintf("%.2f %s", tg.Got, tg.Unit)
		}
		if tg.InProcess > 0 {
			got += fmt.Sprintf(" (against the in-process local badgerstore: %.2f %s)", tg.InProcess, tg.Unit)
		}
		if tg.Mirror > 0 {
			got += fmt.Sprintf(" (mirror, every commit on two local stores with no protocol: %.2f %s)", tg.Mirror, tg.Unit)
		}
		fmt.Fprintf(tw, "  %s\t%s\twant %s\t%s\n", verdict, tg.Name, tg.Want, got)
	}
	return tw.Flush()
}

// syncCells returns r's SYNC µs and COMMITS/SYNC cells: the mean round
// time and the commits per round of the primary's (or the local) store,
// then of the replicas', as "580/910" and "7.1/6.0"; "-" where there are
// none. Each replica applies every commit, so the replicas' commits per
// round are those of one replica's round, not of the summed rounds.
func syncCells(r Row) (roundUS, commitsPerSync string) {
	cell := func(syncsPerCommit float64, round time.Duration, stores int) (string, string) {
		if syncsPerCommit <= 0 || stores <= 0 {
			return "-", "-"
		}
		return us(round), fmt.Sprintf("%.1f", float64(stores)/syncsPerCommit)
	}
	pu, pc := cell(r.SyncsPerCommit, r.SyncRound, 1)
	ru, rc := cell(r.ReplicaSyncsPerCommit, r.ReplicaSyncRound, r.Replicas)
	return pu + "/" + ru, pc + "/" + rc
}

// workloadName spells a workload as "small 1×100 B".
func workloadName(w Workload) string {
	return fmt.Sprintf("%s %d×%s", w.Name, w.ObjectsPerTxn, size(w.ObjectSize))
}

func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
