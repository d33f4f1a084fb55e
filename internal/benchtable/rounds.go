package benchtable

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/repld/repld/internal/loadgen"
	"github.com/repld/repld/storage/badgerstore"
)

// roundPrefix starts round i's progress lines when there are several.
func (r *runner) roundPrefix(i int) string {
	if r.cfg.Rounds <= 1 {
		return ""
	}
	return fmt.Sprintf("round %d/%d: ", i+1, r.cfg.Rounds)
}

// combineRounds makes one row of each row's measurements in the rounds
// (rounds[i][j] is row j of round i; a round cut short by an error may
// have fewer rows). See Row.Rounds for how.
func combineRounds(rounds [][]Row) []Row {
	if len(rounds) == 0 {
		return nil
	}
	if len(rounds) == 1 {
		return rounds[0]
	}
	out := make([]Row, len(rounds[0]))
	for j := range out {
		var samples []Row
		for _, rows := range rounds {
			if j < len(rows) {
				samples = append(samples, rows[j])
			}
		}
		out[j] = combineRow(samples)
	}
	return out
}

// combineRow combines the measurements of one row.
func combineRow(samples []Row) Row {
	row := samples[0]
	row.Rounds = len(samples)
	field := func(f func(Row) float64) []float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		return v
	}
	ratios := field(func(s Row) float64 { return s.Ratio })
	row.Ratio = median(ratios)
	row.RatioMin, row.RatioMax = slices.Min(ratios), slices.Max(ratios)
	row.P50Ratio = median(field(func(s Row) float64 { return s.P50Ratio }))

	var (
		res               loadgen.Result
		cpu               time.Duration
		primary, replicas badgerstore.SyncStats
	)
	for _, s := range samples {
		r := s.Result
		res.Clients = r.Clients
		res.Elapsed += r.Elapsed
		res.Commits += r.Commits
		res.NotReplicated += r.NotReplicated
		res.Objects += r.Objects
		res.Bytes += r.Bytes
		res.Reads += r.Reads
		res.ReadBytes += r.ReadBytes
		res.LastTID = max(res.LastTID, r.LastTID)
		cpu += s.CPUPerCommit * time.Duration(r.Commits)
		primary = addSyncs(primary, s.SyncsPerCommit, s.SyncRound, r.Commits)
		replicas = addSyncs(replicas, s.ReplicaSyncsPerCommit, s.ReplicaSyncRound, r.Commits)
		row.Lag = max(row.Lag, s.Lag)
	}
	res.Commit = combineLatency(samples, func(s Row) loadgen.Latency { return s.Result.Commit })
	res.Read = combineLatency(samples, func(s Row) loadgen.Latency { return s.Result.Read })
	row.Result = res
	row.CPUPerCommit = 0
	if res.Commits > 0 {
		row.CPUPerCommit = cpu / time.Duration(res.Commits)
	}
	row.SyncsPerCommit, row.SyncRound = syncsPer(badgerstore.SyncStats{}, primary, res.Commits)
	row.ReplicaSyncsPerCommit, row.ReplicaSyncRound = syncsPer(badgerstore.SyncStats{}, replicas, res.Commits)
	return row
}

// addSyncs adds to total the sync rounds a measurement of commits
// commits reported as rounds per commit and their mean duration.
func addSyncs(total badgerstore.SyncStats, perCommit float64, round time.Duration, commits uint64) badgerstore.SyncStats {
	n := uint64(math.Round(perCommit * float64(commits)))
	total.Rounds += n
	total.Time += round * time.Duration(n)
	return total
}

// combineLatency combines the rounds' latencies: counts add up, the
// maximum is the largest, the rest are medians.
func combineLatency(samples []Row, get func(Row) loadgen.Latency) loadgen.Latency {
	var l loadgen.Latency
	med := func(f func(loadgen.Latency) time.Duration) time.Duration {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = float64(f(get(s)))
		}
		return time.Duration(median(v))
	}
	for _, s := range samples {
		l.Count += get(s).Count
		l.Max = max(l.Max, get(s).Max)
	}
	l.Mean = med(func(l loadgen.Latency) time.Duration { return l.Mean })
	l.P50 = med(func(l loadgen.Latency) time.Duration { return l.P50 })
	l.P99 = med(func(l loadgen.Latency) time.Duration { return l.P99 })
	l.P999 = med(func(l loadgen.Latency) time.Duration { return l.P999 })
	return l
}

// median returns the middle value of v, or the mean of the two middle
// ones; v is sorted in place.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	}
	n := len(v)
	return (v[n/2-1] + v[n/2]) / 2
}
