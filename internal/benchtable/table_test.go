package benchtable

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/repld/repld/internal/cputime"
	"github.com/repld/repld/primary"
)

// TestRunSmallTable runs a two-setup, one-workload table with short rows
// and a small catch-up: the whole runner, in seconds.
func TestRunSmallTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	var progress bytes.Buffer
	tab, err := Run(ctx, Config{
		Dir:         t.TempDir(),
		RowDuration: 100 * time.Millisecond,
		Rounds:      3,
		Workloads:   []Workload{{"small", 1, 1, 100}},
		Setups:      []Setup{{Local: true}, {Mirror: true}, {Replicas: 1, Mode: primary.Applied}},
		CatchUpTxns: 200,
		ResyncLarge: 1,
		Progress:    &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 3 {
		t.Fatalf("%d rows, want 3", len(tab.Rows))
	}
	local, mirrored, applied := tab.Rows[0], tab.Rows[1], tab.Rows[2]
	if local.Path != "local" || local.Ratio != 1 || applied.Path != "embedded" || applied.Setup != "1 replica, applied" {
		t.Fatalf("rows %+v and %+v", local, applied)
	}
	if mirrored.Setup != "2 local, mirrored" || mirrored.Path != "local" || mirrored.ReplicaSyncsPerCommit <= 0 {
		t.Fatalf("mirror row %+v, want both stores' sync rounds", mirrored)
	}
	for _, r := range tab.Rows {
		if r.Result.Commits == 0 || r.Ratio <= 0 || r.P50Ratio <= 0 {
			t.Fatalf("row %s measured nothing: %+v", r.Setup, r)
		}
		if r.Rounds != 3 || r.RatioMin > r.Ratio || r.Ratio > r.RatioMax {
			t.Fatalf("row %s: %d rounds, ratio %.2f in %.2f–%.2f, want 3 rounds and the median within the range", r.Setup, r.Rounds, r.Ratio, r.RatioMin, r.RatioMax)
		}
		if _, ok := cputime.Process(); ok && r.CPUPerCommit <= 0 {
			t.Fatalf("row %s: no CPU time per commit", r.Setup)
		}
		// Every store is durable: each commit waits for a sync round.
		if r.SyncsPerCommit <= 0 || r.SyncRound <= 0 {
			t.Fatalf("row %s: %.2f sync rounds per commit of %v, want the primary's (or local) rounds", r.Setup, r.SyncsPerCommit, r.SyncRound)
		}
	}
	if local.ReplicaSyncsPerCommit != 0 || local.ReplicaSyncRound != 0 {
		t.Fatalf("local row has replica sync rounds: %+v", local)
	}
	if applied.ReplicaSyncsPerCommit <= 0 || applied.ReplicaSyncRound <= 0 {
		t.Fatalf("applied row: %.2f replica sync rounds per commit of %v, want some", applied.ReplicaSyncsPerCommit, applied.ReplicaSyncRound)
	}
	if rounds, commits := syncCells(local); !strings.HasSuffix(rounds, "/-") || !strings.HasSuffix(commits, "/-") || strings.HasPrefix(rounds, "-") {
		t.Fatalf("sync cells of the local row: %q, %q, want the local store's and no replicas'", rounds, commits)
	}
	if rounds, commits := syncCells(applied); strings.Contains(rounds+commits, "-") {
		t.Fatalf("sync cells of the applied row: %q, %q, want the primary's and the replica's", rounds, commits)
	}
	if tab.CatchUp == nil || tab.CatchUp.Txns != 200 || tab.CatchUp.TxnsPerSec() <= 0 {
		t.Fatalf("catch-up %+v, want 200 transactions", tab.CatchUp)
	}
	if tab.Resync == nil || tab.Resync.Txns != 201 || tab.Resync.Bytes != 200*100+largeObject {
		t.Fatalf("resync %+v, want 201 transactions", tab.Resync)
	}
	if len(tab.Targets) != 4 || tab.Targets[0].Source != "" || tab.Targets[1].Source == "" || tab.Targets[2].Source != "" || tab.Targets[3].Source == "" {
		t.Fatalf("targets %+v", tab.Targets)
	}
	if !strings.HasSuffix(tab.Targets[1].Source, "median of 3 rounds") {
		t.Fatalf("the 1-client latency target's source %q does not say it is a median", tab.Targets[1].Source)
	}
	if tab.Targets[1].Mirror <= 0 {
		t.Fatalf("the 1-client latency target has no mirror figure: %+v", tab.Targets[1])
	}

	var out bytes.Buffer
	if err := tab.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SETUP", "SYNC µs", "COMMITS/SYNC", "local badger", "2 local, mirrored", "1 replica, applied", "small 1×100 B", "mirror, every commit on two local stores", "(MIN–MAX)", "catch-up:", "full resync:", "targets:", "not measured"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, want := range []string{"catch-up of 200 transactions", "sync rounds (primary/replica)", "round 3/3: 1 replica, applied"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	b, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"syncs_per_commit":`, `"sync_round":`, `"replica_syncs_per_commit":`, `"replica_sync_round":`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{RowDuration: -time.Second}, "RowDuration is -1s"},
		{Config{Workloads: []Workload{{"w", -1, 1, 1}}}, `workload "w": loadgen: Clients is -1`},
		{Config{Setups: []Setup{{Replicas: -1}}}, "Replicas is -1"},
		{Config{Setups: []Setup{{Replicas: 1, Mode: 7}}}, "Sync.Mode is 7"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}
