package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/node"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

// run executes the root command with args and the given environment,
// returning its output and error.
func run(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd(&out, envMap(env))
	root.SetOut(&out)
	root.SetArgs(args)
	root.SetContext(t.Context())
	err := root.Execute()
	return out.String(), err
}

func TestHelpHasExamples(t *testing.T) {
	for _, sub := range []string{"primary", "replica", "demo"} {
		out, err := run(t, nil, sub, "--help")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "repld "+sub) {
			t.Errorf("%s --help lacks examples:\n%s", sub, out)
		}
	}
	out, _ := run(t, nil, "primary", "--help")
	if strings.Contains(out, "debug-workload") {
		t.Error("the testing aid --debug-workload shows in --help")
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, err := run(t, nil, "completion", shell)
		if err != nil || !strings.Contains(out, "repld") {
			t.Errorf("completion %s: %v, %d bytes", shell, err, len(out))
		}
	}
	out, err := run(t, nil, "__complete", "primary", "--sync", "")
	if err != nil || !strings.Contains(out, "applied") {
		t.Errorf("completion of --sync: %v\n%s", err, out)
	}
}

// TestValidation checks that bad settings fail before anything starts,
// naming the flag and the fix.
func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"primary without flags", nil, []string{"primary"},
			[]string{"--data is required", "--listen is required", "--admin is required", "REPLD_LISTEN"}},
		{"replica without primary", nil, []string{"replica", "--name", "r1", "--data", "d", "--admin", "127.0.0.1:0"},
			[]string{"--primary is required"}},
		{"replica without name", nil, []string{"replica", "--data", "d", "--admin", "127.0.0.1:0", "--primary", "127.0.0.1:1"},
			[]string{"--name is empty"}},
		{"bad address", nil, []string{"primary", "--data", "d", "--listen", "nowhere", "--admin", "127.0.0.1:0"},
			[]string{`--listen "nowhere" is not host:port`}},
		{"half of tls", nil, []string{"primary", "--data", "d", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tls-cert", "c.pem"},
			[]string{"--tls-cert, --tls-key and --tls-ca go together"}},
		{"failure timeout too short", map[string]string{"REPLD_FAILURE_TIMEOUT": "100ms"}, []string{"replica", "--name", "r1", "--data", "d", "--admin", "127.0.0.1:0", "--primary", "127.0.0.1:1"},
			[]string{"--failure-timeout 100ms is below 500ms", "set at least 500ms"}},
		{"bad k", nil, []string{"primary", "--data", "d", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--sync-replicas", "0"},
			[]string{"--sync-replicas 0"}},
		{"bad sync from env", map[string]string{"REPLD_SYNC": "sometimes"}, []string{"primary"},
			[]string{"--sync", "REPLD_SYNC", "sometimes", "async, received, applied"}},
		{"bad log format", nil, []string{"primary", "--log-format", "xml"},
			[]string{"--log-format", "json, console"}},
		{"stray argument", nil, []string{"primary", "extra"},
			[]string{`unknown command "extra"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.env, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestMetricsFromStatus(t *testing.T) {
	pst := primary.Status{
		Name: "p", Role: "primary", Epoch: 2,
		Sync:     primary.SyncStatus{Mode: "applied", K: 2, Degraded: true, Healthy: 1},
		Counters: primary.Counters{Commits: 10, BytesReplicated: 1000, Quarantines: 1},
		Replicas: []primary.ReplicaStatus{
			{Name: "r1", State: "healthy"},
			{Name: "r2", State: "quarantined", LagTransactions: 4, LagSeconds: 1.5, Quarantine: &primary.Quarantine{Reason: "disk full"}},
		},
	}
	store := syncingStore{stats: badgerstore.SyncStats{Rounds: 7, Time: 1500 * time.Millisecond}}
	text := scrape(t, func() []admin.Sample { return nodeSamples(pst, store) })
	for _, want := range []string{
		"# TYPE repld_store_syncs_total counter\nrepld_store_syncs_total 7\n",
		"# TYPE repld_store_sync_seconds_total counter\nrepld_store_sync_seconds_total 1.5\n",
		"# TYPE repld_commits_total counter\nrepld_commits_total 10\n",
		`repld_replica_lag_transactions{replica="r1"} 0`,
		`repld_replica_lag_transactions{replica="r2"} 4`,
		"repld_sync_degraded 1\n",
		`repld_replica_state{replica="r2",state="quarantined"} 1`,
		`repld_replica_state{replica="r2",state="healthy"} 0`,
		`repld_node_info{name="p",role="primary"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("primary metrics lack %q:\n%s", want, text)
		}
	}

	rst := replica.Status{Name: "r2", Role: "replica", State: replica.StateQuarantined,
		Quarantine: &replica.Quarantine{Reason: "disk full"}, Counters: replica.Counters{Applied: 3}}
	text = scrape(t, func() []admin.Sample { return nodeSamples(node.ReplicaStatus{Status: rst}, store) })
	for _, want := range []string{"repld_quarantined 1\n", "repld_applied_total 3\n", `repld_replica_state{replica="r2",state="live"} 0`,
		"repld_store_syncs_total 7\n", "repld_store_sync_seconds_total 1.5\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("replica metrics lack %q:\n%s", want, text)
		}
	}
	// A store that does not count its syncs has no such series.
	text = scrape(t, func() []admin.Sample { return nodeSamples(node.ReplicaStatus{Status: rst}, plainStore{}) })
	if strings.Contains(text, "repld_store_sync") || !strings.Contains(text, "repld_applied_total 3\n") {
		t.Errorf("replica metrics with a store that counts no syncs:\n%s", text)
	}
	if err := replicaHealth(rst); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("health of a quarantined replica: %v", err)
	}
	if err := replicaHealth(replica.Status{State: replica.StateLive}); err != nil {
		t.Errorf("health of a live replica: %v", err)
	}
}

// plainStore stands for a store that does not count its syncs.
type plainStore struct{ storage.Storage }

// syncingStore stands for a badgerstore with the given sync rounds.
type syncingStore struct {
	storage.Storage
	stats badgerstore.SyncStats
}

func (s syncingStore) SyncStats() badgerstore.SyncStats { return s.stats }

// scrape returns the Prometheus text exposition of read's samples, failing
// on any collection error (a pedantic registry also checks consistency).
func scrape(t *testing.T, read func() []admin.Sample) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(admin.NewCollector(read))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
