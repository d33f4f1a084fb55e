package benchtable

import (
	"testing"
	"time"

	"github.com/repld/repld/internal/loadgen"
)

// A row measured in three rounds: counts pooled, ratios and latencies
// the medians, the commit ratios' range kept, CPU and sync rounds
// weighted by the commits of each round, the lag the longest.
func TestCombineRounds(t *testing.T) {
	sample := func(commits uint64, ratio float64, p50 time.Duration, cpu time.Duration, syncsPerCommit float64, round time.Duration, lag time.Duration) Row {
		return Row{
			Setup: "1 replica, applied", Ratio: ratio, P50Ratio: 2 * ratio, Rounds: 1,
			Result: loadgen.Result{
				Elapsed: time.Second, Commits: commits, Objects: commits, Bytes: 100 * commits,
				Commit: loadgen.Latency{Count: commits, P50: p50, P99: 2 * p50, P999: 3 * p50, Mean: p50, Max: 4 * p50},
			},
			CPUPerCommit: cpu, SyncsPerCommit: syncsPerCommit, SyncRound: round, Lag: lag,
		}
	}
	baseline := Row{Setup: "local badger", Ratio: 1, P50Ratio: 1, Rounds: 1, Result: loadgen.Result{Elapsed: time.Second, Commits: 10}}
	rounds := [][]Row{
		{baseline, sample(100, 0.5, 1*time.Millisecond, 100*time.Microsecond, 0.5, 400*time.Microsecond, time.Millisecond)},
		{baseline, sample(300, 0.9, 3*time.Millisecond, 300*time.Microsecond, 0.1, 800*time.Microsecond, 0)},
		{baseline, sample(200, 0.6, 2*time.Millisecond, 200*time.Microsecond, 0.2, 600*time.Microsecond, 0)},
	}
	rows := combineRounds(rounds)
	if len(rows) != 2 || rows[0].Setup != "local badger" || rows[0].Result.Commits != 30 || rows[0].Ratio != 1 || rows[0].Rounds != 3 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[1]
	if r.Rounds != 3 || r.Ratio != 0.6 || r.RatioMin != 0.5 || r.RatioMax != 0.9 || r.P50Ratio != 1.2 {
		t.Fatalf("ratios %d rounds, %.2f (%.2f–%.2f), p50 %.2f; want 3, 0.60 (0.50–0.90), 1.20", r.Rounds, r.Ratio, r.RatioMin, r.RatioMax, r.P50Ratio)
	}
	if r.Result.Commits != 600 || r.Result.Elapsed != 3*time.Second || r.Result.CommitsPerSec() != 200 || r.Result.Bytes != 60000 {
		t.Fatalf("pooled result %+v", r.Result)
	}
	if c := r.Result.Commit; c.Count != 600 || c.P50 != 2*time.Millisecond || c.P99 != 4*time.Millisecond || c.Max != 12*time.Millisecond {
		t.Fatalf("latency %+v, want the medians and the largest maximum", c)
	}
	// CPU: (100×100 + 300×300 + 200×200) µs / 600 commits.
	if want := time.Duration((100*100 + 300*300 + 200*200) * int64(time.Microsecond) / 600); r.CPUPerCommit != want {
		t.Fatalf("CPU per commit %v, want %v", r.CPUPerCommit, want)
	}
	// Sync rounds: 50 + 30 + 40 = 120 rounds for 600 commits, taking
	// 50×400 + 30×800 + 40×600 µs.
	if r.SyncsPerCommit != 0.2 || r.SyncRound != (50*400+30*800+40*600)*time.Microsecond/120 {
		t.Fatalf("sync rounds %.3f per commit of %v", r.SyncsPerCommit, r.SyncRound)
	}
	if r.Lag != time.Millisecond {
		t.Fatalf("lag %v, want the longest", r.Lag)
	}
	if got := combineRounds(rounds[:1]); len(got) != 2 || got[1].Rounds != 1 || got[1].Ratio != 0.5 {
		t.Fatalf("one round is not kept as measured: %+v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Fatalf("median of an even count %v, want 2.5", got)
	}
}
