package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeControl records the calls and answers with err.
type fakeControl struct {
	calls []string
	err   error
}

func (f *fakeControl) answer(call string) (any, error) {
	f.calls = append(f.calls, call)
	if f.err != nil {
		return nil, f.err
	}
	return map[string]string{"did": call}, nil
}

func (f *fakeControl) Quarantine(_ context.Context, reason string) (any, error) {
	return f.answer("quarantine " + reason)
}
func (f *fakeControl) Release(context.Context) (any, error) { return f.answer("release") }
func (f *fakeControl) Resync(context.Context) (any, error)  { return f.answer("resync") }
func (f *fakeControl) Promote(context.Context) (any, error) { return f.answer("promote") }
func (f *fakeControl) Follow(_ context.Context, p string) (any, error) {
	return f.answer("follow " + p)
}
func (f *fakeControl) QuarantineReplica(_ context.Context, name, reason string) (any, error) {
	return f.answer("quarantine " + name + " " + reason)
}
func (f *fakeControl) ReleaseReplica(_ context.Context, name string) (any, error) {
	return f.answer("release " + name)
}

func controlServer(t *testing.T, c Control) http.Handler {
	t.Helper()
	s, err := Listen(Config{Addr: "127.0.0.1:0", Status: func() any { return nil }, Store: newStore(t), Control: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ln.Close() })
	return s.Handler()
}

func postTo(h http.Handler, path, body string) (int, map[string]string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	var out map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func TestControlEndpoints(t *testing.T) {
	f := &fakeControl{}
	h := controlServer(t, f)
	for _, c := range []struct{ path, body, want string }{
		{"/quarantine", `{"reason":"disk"}`, "quarantine disk"},
		{"/release", ``, "release"},
		{"/resync", `{}`, "resync"},
		{"/promote", ``, "promote"},
		{"/follow", `{"primary":"127.0.0.1:7000"}`, "follow 127.0.0.1:7000"},
		{"/replicas/r1/quarantine", `{"reason":"maintenance"}`, "quarantine r1 maintenance"},
		{"/replicas/r1/release", ``, "release r1"},
	} {
		code, out := postTo(h, c.path, c.body)
		if code != http.StatusOK || out["did"] != c.want {
			t.Errorf("POST %s %s: %d %v; want 200 %q", c.path, c.body, code, out, c.want)
		}
	}
	for _, c := range []struct{ path, body string }{
		{"/quarantine", ``},
		{"/quarantine", `{"reason":""}`},
		{"/quarantine", `{"reason":"x","extra":1}`},
		{"/quarantine", `{"reason":"x"} {}`},
		{"/quarantine", `{"reason":"` + strings.Repeat("x", maxReason+1) + `"}`},
		{"/follow", `{}`},
		{"/follow", `[1]`},
		{"/resync", strings.Repeat(" ", maxControlBody+1)},
	} {
		if code, out := postTo(h, c.path, c.body); code != http.StatusBadRequest || out["error"] == "" {
			t.Errorf("POST %s %.40q: %d %v; want 400 with an error", c.path, c.body, code, out)
		}
	}
	if len(f.calls) != 7 {
		t.Fatalf("bad requests reached the node: %v", f.calls)
	}
}

func TestControlErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("%w: it is the primary", ErrRefused), http.StatusConflict},
		{fmt.Errorf("%w: replica x", ErrNotFound), http.StatusNotFound},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		h := controlServer(t, &fakeControl{err: c.err})
		if code, out := postTo(h, "/promote", ""); code != c.code || !strings.Contains(out["error"], c.err.Error()) {
			t.Errorf("error %v: %d %v; want %d", c.err, code, out, c.code)
		}
	}
	h := controlServer(t, nil)
	if code, _ := postTo(h, "/promote", ""); code != http.StatusNotImplemented {
		t.Errorf("without Control: %d; want 501", code)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/promote", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /promote: %d; want 405", w.Code)
	}
}

// FuzzControlBody checks that no body makes the control decoder panic and
// that a body it accepts decodes into the request's fields only.
func FuzzControlBody(f *testing.F) {
	for _, s := range []string{`{"reason":"disk"}`, `{"primary":"127.0.0.1:7000"}`, `{}`, `{"reason":1}`, `[`, `{"a":1}`, `{} {}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req struct {
			Reason  string `json:"reason"`
			Primary string `json:"primary"`
		}
		if err := parseControlBody(body, &req); err != nil {
			var bad badRequest
			if !errors.As(err, &bad) {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		if err := checkReason(req.Reason); err == nil && len(req.Reason) > maxReason {
			t.Fatalf("reason of %d bytes accepted", len(req.Reason))
		}
	})
}
