package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/benchtable"
	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
)

func TestBenchValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "--primary is required"},
		{[]string{"bench", "--primary", "nohost"}, `--primary "nohost" is not host:port`},
		{[]string{"bench", "--primary", "127.0.0.1:1", "--replicas", "x"}, `--replicas "x"`},
		{[]string{"bench", "--primary", "127.0.0.1:1", "--clients", "0"}, "--clients 0"},
		{[]string{"bench", "--primary", "127.0.0.1:1", "--duration", "0s"}, "--duration 0s"},
		{[]string{"bench", "--primary", "127.0.0.1:1", "--object-size", "0"}, "--object-size 0"},
		{[]string{"bench", "--primary", "127.0.0.1:1", "--objects-per-txn", "0"}, "--objects-per-txn 0"},
		{[]string{"bench", "--primary", "127.0.0.1:1", "--read-ratio", "1"}, "--read-ratio 1"},
		{[]string{"bench-table", "--workloads", "huge"}, `--workloads "huge"`},
		{[]string{"bench-table", "--path", "carrier-pigeon"}, `"carrier-pigeon"`},
	} {
		_, err := run(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	// The environment sets bench flags like any other.
	_, err := run(t, map[string]string{"REPLD_PRIMARY": "127.0.0.1:1", "REPLD_CLIENTS": "-3"}, "bench")
	if err == nil || !strings.Contains(err.Error(), "--clients -3") {
		t.Errorf("REPLD_CLIENTS=-3: error %v", err)
	}
}

func TestBenchHelp(t *testing.T) {
	for _, sub := range []string{"bench", "bench-table"} {
		out, err := run(t, nil, sub, "--help")
		if err != nil || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: %v\n%s", sub, err, out)
		}
	}
}

// statusServer serves a replica's /status whose last TID is *last.
func statusServer(t *testing.T, role string, last storage.TID) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(replica.Status{Name: "r1", Role: role, LastTID: last, State: replica.StateLive, LagSeconds: 0.25})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAdminLag(t *testing.T) {
	ahead := statusServer(t, "replica", 100)
	behind := statusServer(t, "replica", 10)
	notReplica := statusServer(t, "primary", 100)
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	lags := adminLag(t.Context(), []string{addr(ahead), addr(behind), addr(notReplica)}, 50, 30*time.Millisecond)
	if len(lags) != 3 {
		t.Fatalf("%d lags, want 3", len(lags))
	}
	if l := lags[0]; l.Name != "r1" || l.LastTID != 100 || l.CaughtUpMS < 0 || l.LagSeconds != 0.25 || l.Error != "" {
		t.Errorf("caught-up replica: %+v", l)
	}
	if l := lags[1]; l.LastTID != 10 || l.CaughtUpMS != -1 || l.Error != "" {
		t.Errorf("replica behind: %+v", l)
	}
	if l := lags[2]; !strings.Contains(l.Error, `role "primary"`) {
		t.Errorf("primary's admin address: %+v", l)
	}
}

func TestBenchReportJSONAndText(t *testing.T) {
	rep := benchReport{
		Clients: 16, Elapsed: time.Second, Commits: 1000, Reads: 10, CommitsPerSec: 1000, ObjectsPerSec: 1000, MBPerSec: 0.1,
		LatencyUS: latencyUS{P50: 100, P99: 900, P999: 2000}, Path: "remote", Source: "admin /status",
		ReplicaLag: []replicaLag{{Replica: "127.0.0.1:1", Name: "r1", State: "live", LastTID: 5, CaughtUpMS: 1.5}, {Replica: "127.0.0.1:2", Error: "refused"}},
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"commits_per_sec", "objects_per_sec", "mb_per_sec", "latency_us", "replica_lag"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if lat := m["latency_us"].(map[string]any); lat["p50"] != 100.0 || lat["p99"] != 900.0 || lat["p999"] != 2000.0 {
		t.Errorf("latency_us %v", lat)
	}
	var out bytes.Buffer
	if err := printBench(&out, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"commits/s   1000", "p50 100  p99 900  p999 2000", "r1", "1.5 ms", "refused", "reads/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchAgainstServer runs `repld bench --json` over the network client
// against a client server in front of a memstore.
func TestBenchAgainstServer(t *testing.T) {
	mem, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	srv, err := clientserver.Listen("127.0.0.1:0", clientserver.Config{Store: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out, err := run(t, nil, "bench", "--primary", srv.Addr().String(), "--clients", "3", "--duration", "200ms",
		"--objects-per-txn", "2", "--object-size", "64", "--read-ratio", "0.5", "--json", "--log-level", "warn")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Commits == 0 || rep.Reads == 0 || rep.CommitsPerSec <= 0 || rep.LatencyUS.P50 <= 0 || rep.Path != "remote" {
		t.Fatalf("report %+v", rep)
	}
	last, err := mem.LastTransaction(t.Context())
	if err != nil || last != rep.LastTID {
		t.Fatalf("store's last TID %s (%v), the report's %s", last, err, rep.LastTID)
	}
}

// TestBenchTableRemotePath runs a one-row table whose replicated row goes
// through the network client, as `repld bench-table` wires it.
func TestBenchTableRemotePath(t *testing.T) {
	tab, err := benchtable.Run(t.Context(), benchtable.Config{
		Dir:         t.TempDir(),
		RowDuration: 100 * time.Millisecond,
		Rounds:      1,
		Workloads:   []benchtable.Workload{{Name: "small", Clients: 1, ObjectsPerTxn: 1, ObjectSize: 100}},
		Setups:      []benchtable.Setup{{Local: true}, {Mirror: true}, {Replicas: 1, Mode: primary.Applied}},
		CatchUpTxns: -1,
		Connect:     benchConnect(zap.NewNop()),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The in-process baseline, the baseline over the network client, the
	// mirror and the replicated row, both compared with the second.
	if len(tab.Rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(tab.Rows), tab.Rows)
	}
	local, remoteLocal, mirrored, applied := tab.Rows[0], tab.Rows[1], tab.Rows[2], tab.Rows[3]
	if local.Path != "local" || remoteLocal.Setup != "local badger" || remoteLocal.Path != "remote" || mirrored.Path != "remote" || applied.Path != "remote" {
		t.Fatalf("rows %+v", tab.Rows)
	}
	for _, r := range tab.Rows {
		if r.Result.Commits == 0 {
			t.Fatalf("row %s on %s measured nothing", r.Setup, r.Path)
		}
	}
	want := applied.Result.CommitsPerSec() / remoteLocal.Result.CommitsPerSec()
	if applied.Ratio != want {
		t.Fatalf("replicated row's ratio %v, want %v (against the baseline on its path)", applied.Ratio, want)
	}
	p50 := tab.Targets[1]
	if p50.Source == "" || p50.Got != applied.P50Ratio || p50.InProcess <= 0 || p50.Mirror != mirrored.P50Ratio {
		t.Fatalf("p50 target %+v", p50)
	}
}

func TestParseSetup(t *testing.T) {
	good := map[string]benchtable.Setup{
		"mirror":     {Mirror: true},
		"0":          {Replicas: 0},
		"1/applied":  {Replicas: 1, Mode: primary.Applied},
		"2/received": {Replicas: 2, Mode: primary.Received},
	}
	for name, want := range good {
		if got, err := parseSetup(name); err != nil || got != want {
			t.Errorf("parseSetup(%q) = %+v, %v; want %+v", name, got, err, want)
		}
	}
	for _, name := range []string{"", "1", "0/async", "x/applied", "1/fast", "17/async", "-1/async", "mirror/applied"} {
		if _, err := parseSetup(name); err == nil || !strings.Contains(err.Error(), "--setups") {
			t.Errorf("parseSetup(%q) = %v, want an error naming --setups", name, err)
		}
	}
}
