package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/repld/repld/internal/admin"
)

// post POSTs body as JSON to url and fails the test unless the answer is
// 200.
func post(t *testing.T, url string, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: procWaitTimeout}).Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("POST %s: %s: %s", url, resp.Status, e.Error)
	}
}

// TestProcessControl runs the built binary as a primary and two replicas
// and drives the control endpoints as replctl does: quarantine, release
// and resync a replica, then, with the primary gone, promote one replica
// and make the other follow it.
func TestProcessControl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the repld binary")
	}
	dir := t.TempDir()
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	prim := startProc(t, "primary", nil, "primary", "--name", "primary", "--data", filepath.Join(dir, "primary"),
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--heartbeat", "100ms", "--debug-workload", "--log-format", "json",
		"--sync", "applied", "--sync-replicas", "1", "--sync-when-short", "degrade")
	ready := prim.waitLog("primary serving")
	gcsAddr, primAdmin := ready["listen"].(string), "http://"+ready["admin"].(string)
	type replicaProc struct {
		p             *proc
		admin, listen string
	}
	startReplica := func(name string) replicaProc {
		p := startProc(t, name, nil, "replica", "--name", name, "--data", filepath.Join(dir, name),
			"--primary", gcsAddr, "--admin", "127.0.0.1:0", "--log-format", "json")
		l := p.waitLog("replica serving")
		return replicaProc{p, "http://" + l["admin"].(string), l["listen"].(string)}
	}
	r1, r2 := startReplica("r1"), startReplica("r2")
	stateOn := func(adminURL, name string) string {
		var d primaryDoc
		if _, err := call("GET", adminURL+"/status", &d); err != nil {
			return "no status: " + err.Error()
		}
		return d.state(name)
	}
	waitState := func(adminURL, name, state string) {
		waitFor(t, fmt.Sprintf("%s %s on %s", name, state, adminURL), procWaitTimeout, func() bool {
			return stateOn(adminURL, name) == state
		})
	}
	waitState(primAdmin, "r1", "healthy")
	waitState(primAdmin, "r2", "healthy")
	if _, err := call("POST", primAdmin+"/debug/commit?txns=20&size=1000", nil); err != nil {
		t.Fatal(err)
	}

	post(t, r1.admin+"/quarantine", map[string]string{"reason": "disk check"})
	waitState(primAdmin, "r1", "quarantined")
	if _, err := call("POST", primAdmin+"/debug/commit?txns=20&size=1000", nil); err != nil {
		t.Fatal(err)
	}
	post(t, primAdmin+"/replicas/r1/release", nil)
	post(t, r1.admin+"/resync", nil)
	waitState(primAdmin, "r1", "healthy")
	if _, err := call("POST", primAdmin+"/debug/commit?txns=20&size=1000", nil); err != nil {
		t.Fatal(err)
	}
	var last admin.ChainResponse
	if _, err := call("GET", primAdmin+"/chain", &last); err != nil {
		t.Fatal(err)
	}
	for _, r := range []replicaProc{r1, r2} {
		waitFor(t, r.admin+" has "+last.TID, procWaitTimeout, func() bool {
			var got admin.ChainResponse
			_, err := call("GET", r.admin+"/chain", &got)
			return err == nil && got == last
		})
	}

	prim.stop()
	post(t, r1.admin+"/promote", nil)
	post(t, r2.admin+"/follow", map[string]string{"primary": r1.listen})
	waitState(r1.admin, "r2", "healthy")
	var st struct {
		Role  string `json:"role"`
		Epoch uint64 `json:"epoch"`
	}
	if _, err := call("GET", r1.admin+"/status", &st); err != nil || st.Role != "primary" || st.Epoch != 2 {
		t.Fatalf("promoted r1: %+v, %v; want primary with epoch 2", st, err)
	}
	for _, r := range []replicaProc{r1, r2} {
		var got admin.ChainResponse
		if _, err := call("GET", r.admin+"/chain", &got); err != nil || got != last {
			t.Errorf("%s: last transaction %+v (%v), the old primary's %+v", r.admin, got, err, last)
		}
	}
	if t.Failed() {
		return
	}
	r2.p.stop()
	r1.p.stop()
}
