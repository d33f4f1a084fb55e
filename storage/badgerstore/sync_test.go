package badgerstore

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// After a sync round, the files it treats as current (and keeps open) are
// the newest memtable log and value log: no rotation went unnoticed,
// although rounds probe the value log only after writes that put data
// there. Small memtables and value log files make both rotate many times.
func TestSyncRoundsFollowRotation(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.MemTableSize = 1 << 20
	cfg.ValueLogFileSize = 2 << 20
	cfg.BlobThreshold = 64 << 10
	s := openStore(t, cfg)

	var memRotations, vlogRotations int
	first := map[string]int{}
	for i := range 150 {
		sizes := repeat(40, 2000) // inline values: one badger transaction
		if i%3 == 0 {
			sizes = []int{60 << 10} // value log data: the staged path
		}
		commitObjects(t, s, uint64(i), sizes)
		if err := s.durable(); err != nil {
			t.Fatal(err)
		}
		newest := newestLogs(t, dir)
		s.logs.mu.Lock()
		mem, vlog := s.logs.kinds[kindMem].last, s.logs.kinds[kindVlog].last
		s.logs.mu.Unlock()
		if mem != newest[".mem"] || vlog != newest[".vlog"] {
			t.Fatalf("after commit %d: the rounds take memtable log %d and value log %d as current, the newest are %d and %d", i, mem, vlog, newest[".mem"], newest[".vlog"])
		}
		if i == 0 {
			first = newest
		}
		memRotations, vlogRotations = newest[".mem"]-first[".mem"], newest[".vlog"]-first[".vlog"]
	}
	t.Logf("%d memtable and %d value log rotations", memRotations, vlogRotations)
	if memRotations < 3 || vlogRotations < 1 {
		t.Fatalf("%d memtable and %d value log rotations; the test needs more", memRotations, vlogRotations)
	}
}

// newestLogs returns the highest number of each kind of log file in dir.
func newestLogs(t *testing.T, dir string) map[string]int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	newest := map[string]int{}
	for _, e := range entries {
		for _, ext := range []string{".mem", ".vlog"} {
			if n, ok := strings.CutSuffix(e.Name(), ext); ok {
				if id, err := strconv.Atoi(n); err == nil && id > newest[ext] {
					newest[ext] = id
				}
			}
		}
	}
	return newest
}

// SyncStats counts the rounds that made commits durable and their time;
// commits of a NoSync store run none.
func TestSyncStats(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	if st := s.SyncStats(); st != (SyncStats{}) {
		t.Fatalf("stats of a new store: %+v, want none", st)
	}
	const commits = 3
	for i := range commits {
		commitObjects(t, s, uint64(i), []int{100})
	}
	// Each commit, one after another, needs a round that started after
	// its write.
	if st := s.SyncStats(); st.Rounds < commits || st.Time <= 0 {
		t.Fatalf("stats after %d durable commits: %+v, want at least %d rounds taking some time", commits, st, commits)
	}

	cfg := testConfig(t, t.TempDir())
	cfg.NoSync = true
	s = openStore(t, cfg)
	for i := range commits {
		commitObjects(t, s, uint64(i), []int{100})
	}
	if st := s.SyncStats(); st != (SyncStats{}) {
		t.Fatalf("stats after %d NoSync commits: %+v, want none", commits, st)
	}
}
