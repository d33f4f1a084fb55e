package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/repld/repld/storage"
)

func TestQuarantine(t *testing.T) {
	p, r1, r2 := trio(t)
	var reason string
	r1.onPost = func(f *fakeNode, path string, body map[string]string) (int, any) {
		reason = body["reason"]
		f.st.State, f.st.Quarantine = "quarantined", &Quarantine{Reason: reason}
		return http.StatusOK, map[string]string{"state": "quarantined"}
	}
	r := replctl(t, nil, nodesArg(p, r1, r2), "quarantine", "r1", "--reason", "disk replaced")
	wantCode(t, r, 0)
	if !slices.Equal(r1.posts, []string{"/quarantine"}) || reason != "disk replaced" {
		t.Fatalf("posts %v with reason %q", r1.posts, reason)
	}
	if !strings.Contains(r.stdout, "POST /quarantine: ok\n") || !strings.Contains(r.stdout, "r1: replica quarantined, epoch 1, last TID "+tidN(10).String()+"; disk replaced") {
		t.Errorf("output:\n%s", r.stdout)
	}
}

// When the replica does not answer, the primary records the quarantine.
func TestQuarantineThroughPrimary(t *testing.T) {
	p, r1, _ := trio(t)
	r1.srv.Close()
	r := replctl(t, nil, nodesArg(p, r1), "quarantine", "r1", "--reason", "gone")
	wantCode(t, r, 0)
	if !slices.Equal(p.posts, []string{"/replicas/r1/quarantine"}) {
		t.Fatalf("primary posts %v", p.posts)
	}
}

func TestRefusedControlExits2(t *testing.T) {
	p, r1, _ := trio(t)
	r1.onPost = func(*fakeNode, string, map[string]string) (int, any) {
		return http.StatusConflict, map[string]string{"error": "already quarantined"}
	}
	r := replctl(t, nil, nodesArg(p, r1), "quarantine", "r1", "--reason", "x")
	wantCode(t, r, exitError)
	if !strings.Contains(r.stderr, "refused: already quarantined") || !strings.Contains(r.stderr, r1.addr()) {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

// release and resync ask the primary first, then the replica, and wait
// until the replica is live at the primary's last TID.
func TestReleaseAndResync(t *testing.T) {
	for _, action := range []string{"release", "resync"} {
		p, r1, r2 := trio(t)
		r1.st.State, r1.st.Quarantine = "quarantined", &Quarantine{Reason: "apply failed"}
		r1.txns = r1.txns[:6]
		r1.onPost = func(f *fakeNode, path string, _ map[string]string) (int, any) {
			f.st.State, f.st.Quarantine = "catching-up", nil
			if path == "/resync" {
				f.txns = nil
			}
			f.st.CatchUp = &CatchUp{TargetTID: tidN(10)}
			return http.StatusOK, map[string]string{"state": "catching-up"}
		}
		// Each status read of r1 while catching up applies one more
		// transaction of the primary's history.
		r1.onStatus = func(f *fakeNode) {
			if f.st.State != "catching-up" {
				return
			}
			f.txns = slices.Clone(p.txns[:len(f.txns)+1])
			f.st.CatchUp.DoneTID = f.txns[len(f.txns)-1].tid
			if len(f.txns) == len(p.txns) {
				f.st.State, f.st.CatchUp = "live", nil
			}
		}
		r := replctl(t, nil, nodesArg(p, r1, r2), action, "r1", "--poll", "1ms", "--json")
		wantCode(t, r, 0)
		if !slices.Equal(p.posts, []string{"/replicas/r1/release"}) || !slices.Equal(r1.posts, []string{"/" + action}) {
			t.Fatalf("%s: primary posts %v, replica posts %v", action, p.posts, r1.posts)
		}
		rep := decode[ControlReport](t, r)
		if rep.Final == nil || rep.Final.State != "live" || rep.Final.LastTID != tidN(10) {
			t.Fatalf("%s: final status %+v", action, rep.Final)
		}
		wantCode(t, replctl(t, nil, nodesArg(p, r1, r2), "verify"), 0)
	}
}

func TestReleaseFailsWhenQuarantinedAgain(t *testing.T) {
	p, r1, _ := trio(t)
	r1.st.State, r1.st.Quarantine = "quarantined", &Quarantine{Reason: "apply failed"}
	r1.onPost = func(f *fakeNode, _ string, _ map[string]string) (int, any) {
		f.st.Quarantine = &Quarantine{Reason: "checksum mismatch again"}
		f.txns = f.txns[:3]
		return http.StatusOK, nil
	}
	r := replctl(t, nil, nodesArg(p, r1), "release", "r1", "--poll", "1ms")
	wantCode(t, r, exitError)
	if !strings.Contains(r.stderr, "quarantined again") || !strings.Contains(r.stderr, "checksum mismatch again") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestReleaseNeedsPrimary(t *testing.T) {
	_, r1, r2 := trio(t)
	r := replctl(t, nil, nodesArg(r1, r2), "release", "r1")
	wantCode(t, r, exitError)
	if !strings.Contains(r.stderr, "no primary") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestPromote(t *testing.T) {
	p, r1, r2 := trio(t)
	r3 := newFake(t, "r3", "replica")
	r3.st.State = "quarantined"
	p.srv.Close() // the primary is gone
	var followed []string
	r1.onPost = func(f *fakeNode, path string, _ map[string]string) (int, any) {
		f.st.Role, f.st.Epoch, f.st.State = "primary", 2, ""
		return http.StatusOK, map[string]any{"role": "primary", "epoch": 2, "listen": "127.0.0.1:9001"}
	}
	r2.onPost = func(_ *fakeNode, path string, body map[string]string) (int, any) {
		followed = append(followed, path+" "+body["primary"])
		return http.StatusOK, nil
	}
	r := replctl(t, nil, nodesArg(p, r1, r2, r3), "promote", "r1")
	wantCode(t, r, 0)
	if !slices.Equal(r1.posts, []string{"/promote"}) || !slices.Equal(followed, []string{"/follow 127.0.0.1:9001"}) || len(r3.posts) != 0 {
		t.Fatalf("r1 posts %v, r2 follows %v, r3 posts %v", r1.posts, followed, r3.posts)
	}
	if !strings.Contains(r.stdout, "r1: primary serving, epoch 2") {
		t.Errorf("output:\n%s", r.stdout)
	}
}

func TestPromoteRefusals(t *testing.T) {
	p, r1, r2 := trio(t)
	r := replctl(t, nil, nodesArg(p, r1, r2), "promote", "r1")
	wantCode(t, r, exitError)
	if !strings.Contains(r.stderr, "still answers") || len(r1.posts) != 0 {
		t.Fatalf("promote with a live primary: stderr %s, posts %v", r.stderr, r1.posts)
	}
	p.srv.Close()
	r2.commit(tidN(11), "alice", map[storage.OID]string{1: "acked on r2 only"})
	r = replctl(t, nil, nodesArg(p, r1, r2), "promote", "r1")
	wantCode(t, r, exitError)
	if !strings.Contains(r.stderr, "r2 has applied up to") || !strings.Contains(r.stderr, "--force") || len(r1.posts) != 0 {
		t.Fatalf("promote of a replica behind another: stderr %s, posts %v", r.stderr, r1.posts)
	}
	r = replctl(t, nil, nodesArg(p, r1, r2), "promote", "r1", "--force", "--listen", "127.0.0.1:9001")
	wantCode(t, r, 0)
	if !slices.Equal(r1.posts, []string{"/promote"}) || !slices.Equal(r2.posts, []string{"/follow"}) {
		t.Fatalf("forced promote: r1 posts %v, r2 posts %v", r1.posts, r2.posts)
	}
}

// A node listening on every interface reports an address the others
// cannot dial: the host of its admin address replaces it.
func TestPromotedListen(t *testing.T) {
	for _, c := range []struct{ answer, want string }{
		{`{"listen":"10.0.0.2:7000"}`, "10.0.0.2:7000"},
		{`{"listen":"0.0.0.0:7000"}`, "10.0.0.9:7000"},
		{`{"listen":"[::]:7000"}`, "10.0.0.9:7000"},
		{`{"listen":":7000"}`, "10.0.0.9:7000"},
		{`{"listen":"nonsense"}`, ""},
		{`{"did":"promoted"}`, ""},
		{`not json`, ""},
	} {
		if got := promotedListen([]byte(c.answer), "10.0.0.9:7080"); got != c.want {
			t.Errorf("promotedListen(%s) = %q, want %q", c.answer, got, c.want)
		}
	}
}
