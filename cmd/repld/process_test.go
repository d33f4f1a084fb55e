package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/repld/repld/gcs/tcptransport/tlstest"
	"github.com/repld/repld/internal/admin"
)

// Bounds of the process-level test's waits.
const (
	procStartTimeout = 30 * time.Second
	procWaitTimeout  = 60 * time.Second
	procStopTimeout  = 20 * time.Second
	procPoll         = 25 * time.Millisecond
)

// proc is one repld process whose logs (JSON, one object per line) go to a
// file the test reads.
type proc struct {
	t       *testing.T
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process exited
	err     error         // its exit status, once done is closed
}

// startProc starts repld with args; the test's cleanup kills it if it is
// still running.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(repldBinary(t), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("log of %s:\n%s", name, tail(b, 60))
			}
		}
	})
	return p
}

func tail(b []byte, lines int) []byte {
	ls := bytes.Split(b, []byte("\n"))
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return bytes.Join(ls, []byte("\n"))
}

// waitLog waits for a log line with the given message and returns its
// fields.
func (p *proc) waitLog(msg string) map[string]any {
	p.t.Helper()
	var found map[string]any
	waitFor(p.t, fmt.Sprintf("%s logs %q", p.name, msg), procStartTimeout, func() bool {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before logging %q: %v", p.name, msg, p.err)
		default:
		}
		f, err := os.Open(p.logPath)
		if err != nil {
			p.t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and checks the process shuts down cleanly.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("%s exited with %v after SIGTERM, want status 0", p.name, p.err)
		}
	case <-time.After(procStopTimeout):
		p.t.Errorf("%s still running %v after SIGTERM", p.name, procStopTimeout)
	}
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v until %s", timeout, what)
		}
		time.Sleep(procPoll)
	}
}

// call does an HTTP request and decodes a JSON answer into out; it returns
// the status code.
func call(method, url string, out any) (int, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: procWaitTimeout}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, e.Error)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// scrapeURL returns the text of a GET of url.
func scrapeURL(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: procWaitTimeout}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}

// sampleValue returns the value of the unlabelled series name in a
// Prometheus text exposition.
func sampleValue(text, name string) (float64, bool) {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// primaryDoc is the part of the primary's /status the test reads (TIDs are
// compared through /chain, whose format this package owns).
type primaryDoc struct {
	Replicas []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"replicas"`
	Counters struct {
		Commits uint64 `json:"commits"`
	} `json:"counters"`
}

func (d primaryDoc) state(name string) string {
	for _, r := range d.Replicas {
		if r.Name == name {
			return r.State
		}
	}
	return ""
}

// tlsEnv issues a CA and one node certificate (valid for loopback, both
// roles) and returns the environment that gives them to every node.
func tlsEnv(t *testing.T) []string {
	t.Helper()
	ca, err := tlstest.NewCA("repld test CA")
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.Issue("repld node")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caFile, err := tlstest.WriteFiles(t.TempDir(), node, ca.PEM)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"REPLD_TLS_CERT=" + cert, "REPLD_TLS_KEY=" + key, "REPLD_TLS_CA=" + caFile}
}

// TestProcessReplicaKilledAndRestarted runs the built binary as a primary
// and two replicas (mutual TLS between them, set through the environment;
// the primary's sync policy from a config file), kills one replica with
// SIGKILL during a workload, restarts it on the same data and checks that it
// catches up and equals the primary.
func TestProcessReplicaKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the repld binary")
	}
	dir := t.TempDir()
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	env := tlsEnv(t)
	conf := filepath.Join(dir, "primary.conf")
	if err := os.WriteFile(conf, []byte("# sync policy\nsync = applied\nsync-replicas = 1\nsync-when-short = degrade\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prim := startProc(t, "primary", env, "primary", "--config", conf, "--name", "primary", "--data", filepath.Join(dir, "primary"),
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--heartbeat", "100ms", "--debug-workload", "--log-format", "json")
	ready := prim.waitLog("primary serving")
	gcsAddr, primAdmin := ready["listen"].(string), "http://"+ready["admin"].(string)
	if ready["sync"] != "applied" || ready["tls"] != true {
		t.Fatalf("primary runs with sync %v and tls %v, want applied from the config file and TLS from the environment", ready["sync"], ready["tls"])
	}

	startReplica := func(name, logName string) (*proc, string) {
		p := startProc(t, logName, env, "replica", "--name", name, "--data", filepath.Join(dir, name),
			"--primary", gcsAddr, "--admin", "127.0.0.1:0", "--log-format", "json")
		return p, "http://" + p.waitLog("replica serving")["admin"].(string)
	}
	r1, r1Admin := startReplica("r1", "r1")
	r2, _ := startReplica("r2", "r2")

	status := func() primaryDoc {
		var d primaryDoc
		if _, err := call("GET", primAdmin+"/status", &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	waitFor(t, "both replicas are healthy", procWaitTimeout, func() bool {
		d := status()
		return d.state("r1") == "healthy" && d.state("r2") == "healthy"
	})

	// The workload: batches of small transactions, every fifth batch with
	// objects of several fragments, until stopped.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var workErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 2000 {
			select {
			case <-stop:
				return
			default:
			}
			size := 2000
			if i%5 == 0 {
				size = 300 << 10
			}
			if _, err := call("POST", fmt.Sprintf("%s/debug/commit?txns=5&size=%d", primAdmin, size), nil); err != nil {
				workErr = err
				return
			}
		}
	}()
	stopWorkload := func() {
		close(stop)
		wg.Wait()
		if workErr != nil {
			t.Fatalf("workload: %v", workErr)
		}
	}
	waitCommits := func(n uint64) {
		waitFor(t, fmt.Sprintf("the primary committed %d transactions", n), procWaitTimeout, func() bool {
			return status().Counters.Commits >= n
		})
	}

	waitCommits(30)
	r2.kill()
	waitCommits(80)
	r2, r2Admin := startReplica("r2", "r2-restarted")
	waitCommits(130)
	stopWorkload()

	var last admin.ChainResponse
	if _, err := call("GET", primAdmin+"/chain", &last); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ name, admin string }{{"r1", r1Admin}, {"r2", r2Admin}} {
		var got admin.ChainResponse
		waitFor(t, r.name+" has the primary's last transaction "+last.TID, procWaitTimeout, func() bool {
			_, err := call("GET", r.admin+"/chain", &got)
			return err == nil && got.TID == last.TID
		})
		if got != last {
			t.Errorf("%s: last transaction and chain %+v, primary %+v", r.name, got, last)
		}
	}
	t.Logf("the primary committed %d transactions, the last %s; both replicas have its chain %s", status().Counters.Commits, last.TID, last.Chain)
	if d := status(); d.state("r2") != "healthy" {
		t.Errorf("r2 is %q on the primary after catching up, want healthy", d.state("r2"))
	}
	// Both roles count the sync rounds of their durable stores.
	for _, n := range []struct{ name, admin string }{{"primary", primAdmin}, {"r1", r1Admin}} {
		text := scrapeURL(t, n.admin+"/metrics")
		for _, metric := range []string{"repld_store_syncs_total", "repld_store_sync_seconds_total"} {
			if v, ok := sampleValue(text, metric); !ok || v <= 0 {
				t.Errorf("%s: /metrics has %s %v (present %v), want a positive value", n.name, metric, v, ok)
			}
		}
	}
	if t.Failed() {
		return
	}
	r1.stop()
	r2.stop()
	prim.stop()
}
