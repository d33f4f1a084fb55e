package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func commit(t *testing.T, s storage.Storage) storage.Commit {
	t.Helper()
	ctx := t.Context()
	txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte("test")})
	if err != nil {
		t.Fatal(err)
	}
	oid, err := s.NewOID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, oid, 0, []byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := txn.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newStore(t *testing.T) storage.Storage {
	t.Helper()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type testNode struct {
	store  storage.Storage
	health error
}

func newTestServer(t *testing.T, n *testNode, reg *prometheus.Registry) *Server {
	t.Helper()
	s, err := Listen(Config{
		Addr:     "127.0.0.1:0",
		Status:   func() any { return map[string]string{"name": "n1", "role": "primary"} },
		Health:   func() error { return n.health },
		Store:    n.store,
		Gatherer: reg,
		Handlers: map[string]http.Handler{
			"POST /debug/echo": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "echo") }),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ln.Close() })
	return s
}

func get(t *testing.T, h http.Handler, method, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, target, nil))
	return rec.Code, rec.Body.String()
}

func TestEndpoints(t *testing.T) {
	store := newStore(t)
	c1 := commit(t, store)
	c2 := commit(t, store)

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() []Sample {
		return []Sample{
			{Name: "repld_commits_total", Help: "Commits.", Kind: Counter, Value: 7},
			{Name: "repld_replica_lag_transactions", Help: "Lag.", Kind: Gauge, Labels: []string{"replica", "r1"}, Value: 3},
		}
	}))
	n := &testNode{store: store}
	h := newTestServer(t, n, reg).Handler()

	code, body := get(t, h, "GET", "/status")
	if code != 200 || !strings.Contains(body, `"role": "primary"`) {
		t.Errorf("/status = %d %q", code, body)
	}

	code, body = get(t, h, "GET", "/healthz")
	if code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	n.health = errors.New("quarantined: disk full")
	code, body = get(t, h, "GET", "/healthz")
	if code != 503 || !strings.Contains(body, "disk full") {
		t.Errorf("/healthz of a quarantined node = %d %q", code, body)
	}

	for _, tc := range []struct {
		target string
		code   int
		want   string
	}{
		{"/chain?tid=" + c1.TID.String(), 200, c1.Chain.String()},
		{"/chain", 200, c2.Chain.String()},
		{"/chain?tid=" + (c2.TID + 1).String(), 404, "no transaction"},
		{"/chain?tid=zz", 400, "hex"},
	} {
		code, body := get(t, h, "GET", tc.target)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s = %d %q; want %d containing %q", tc.target, code, body, tc.code, tc.want)
		}
	}
	var cr ChainResponse
	_, body = get(t, h, "GET", "/chain")
	if err := json.Unmarshal([]byte(body), &cr); err != nil || cr.TID != c2.TID.String() {
		t.Errorf("/chain body %q: %+v, %v", body, cr, err)
	}

	code, body = get(t, h, "GET", "/metrics")
	for _, want := range []string{
		"# TYPE repld_commits_total counter", "repld_commits_total 7",
		`repld_replica_lag_transactions{replica="r1"} 3`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics = %d, missing %q in\n%s", code, want, body)
		}
	}

	if code, body := get(t, h, "POST", "/debug/echo"); code != 200 || body != "echo" {
		t.Errorf("extra handler = %d %q", code, body)
	}
	if code, _ := get(t, h, "POST", "/status"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /status = %d, want 405", code)
	}
}

func TestBadSampleIsScrapeErrorNotPanic(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() []Sample {
		return []Sample{
			{Name: "ok_total", Help: "fine", Kind: Counter, Value: 1},
			{Name: "odd", Help: "odd labels", Kind: Gauge, Labels: []string{"only-name"}},
			{Name: "bad name", Help: "bad", Kind: Gauge},
		}
	}))
	if _, err := reg.Gather(); err == nil {
		t.Fatal("Gather accepted bad samples")
	}
}

func TestServeAndShutdown(t *testing.T) {
	store := newStore(t)
	n := &testNode{store: store}
	s := newTestServer(t, n, prometheus.NewRegistry())
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()

	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz = %d", resp.StatusCode)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown = %v, want nil", err)
	}
	if code, body := get(t, s.Handler(), "GET", "/healthz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("healthz while shutting down = %d %q", code, body)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestConfigValidate(t *testing.T) {
	err := Config{Addr: "nonsense"}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{`Addr "nonsense"`, "Status is nil", "Store is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
