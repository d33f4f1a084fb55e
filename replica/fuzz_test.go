package replica

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
	"github.com/repld/repld/wire"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// markerSeeds are quarantine marker files, good and bad.
func markerSeeds() map[string][]byte {
	good, _ := json.Marshal(markerFile{Version: 1, Quarantine: Quarantine{Reason: "disk full", Code: "storage", Seq: 3, TID: 0x03ea1b2c3d4e5f61}})
	return map[string][]byte{
		"good":        good,
		"no-reason":   []byte(`{"version":1,"quarantine":{"reason":"","code":"storage"}}`),
		"version-2":   []byte(`{"version":2,"quarantine":{"reason":"x"}}`),
		"bad-tid":     []byte(`{"version":1,"quarantine":{"reason":"x","tid":"zz"}}`),
		"truncated":   good[:len(good)/2],
		"not-json":    []byte("quarantined\n"),
		"empty":       nil,
		"epoch-good":  []byte("3\n"),
		"epoch-trunc": []byte("3"),
		"epoch-neg":   []byte("-1\n"),
	}
}

// FuzzParseState checks that the files a replica reads at start never
// panic it, and that a marker that parses is one that has a reason.
func FuzzParseState(f *testing.F) {
	for _, b := range markerSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := parseMarker(b); err == nil && (q == nil || q.Reason == "") {
			t.Fatalf("parseMarker accepted %q as %+v", b, q)
		}
	})
}

// coreSeeds are message scripts for FuzzCore (see script).
func coreSeeds() map[string][]byte {
	return map[string][]byte{
		"replay-live-txn": {0, 0, 1, 0, 1, 3, 0, 0, 7, 5, 0, 5, 1, 1, 5, 2, 5, 3, 5},
		"interleaved":     {7, 1, 0, 1, 0, 2, 1, 1, 1, 2, 2, 1, 2, 2, 3, 1, 3, 2},
		"abort-pack":      {7, 1, 0, 1, 1, 1, 4, 1, 6, 0, 8, 2},
		"old-epoch":       {9, 0, 7, 1, 0, 1},
		"replay-messages": {10, 8, 10, 16, 10, 3, 7, 1},
		"txn-messages":    {7, 2, 11, 2, 11, 4, 11, 3},
	}
}

// script turns fuzz bytes into messages: pairs of (kind, argument).
func script(b []byte) []wire.Message {
	var ms []wire.Message
	var tid uint64 = 1 << 40
	for i := 0; i+1 < len(b); i += 2 {
		seq := uint64(b[i+1] % 8)
		const epoch = 1
		switch b[i] % 12 {
		case 0:
			ms = append(ms, &wire.Begin{Epoch: epoch, Seq: seq, Description: []byte{b[i+1]}})
		case 1:
			ms = append(ms, &wire.Store{Epoch: epoch, Seq: seq, OID: uint64(b[i+1] / 8), Serial: 0, Data: []byte{b[i+1]}})
		case 2:
			ms = append(ms, &wire.Vote{Epoch: epoch, Seq: seq})
		case 3:
			tid += uint64(b[i+1])
			ms = append(ms, &wire.Finish{Epoch: epoch, Seq: seq, TID: tid})
		case 4:
			ms = append(ms, &wire.Abort{Epoch: epoch, Seq: seq})
		case 5:
			ms = append(ms, &wire.Heartbeat{Epoch: epoch, LastTID: tid})
		case 6:
			ms = append(ms, &wire.Pack{Epoch: epoch, Before: tid})
		case 7:
			ms = append(ms, &wire.Live{Epoch: epoch, NextSeq: seq, TID: 0})
		case 8:
			ms = append(ms, &wire.Voted{Seq: seq})
		case 9:
			ms = append(ms, &wire.Heartbeat{Epoch: seq, LastTID: tid})
		case 10:
			// A whole replayed transaction; an odd argument cuts its
			// records short.
			tid += uint64(b[i+1])
			records := wire.AppendReplayRecord(nil, uint64(b[i+1]/8), []byte{b[i+1]})
			if b[i+1]%2 == 1 {
				records = records[:len(records)-1]
			}
			ms = append(ms, &wire.Replay{Epoch: epoch, TID: tid, Records: records})
		case 11:
			// A whole live transaction; an odd argument cuts its records
			// short.
			tid += uint64(b[i+1])
			records := wire.AppendTxnRecord(nil, uint64(b[i+1]/8), 0, []byte{b[i+1]})
			if b[i+1]%2 == 1 {
				records = records[:len(records)-1]
			}
			ms = append(ms, &wire.Txn{Epoch: epoch, Seq: seq, TID: tid, Records: records})
		}
	}
	return ms
}

// FuzzCore feeds arbitrary message sequences to the apply state machine:
// it must never panic, never leave a transaction in progress once
// quarantined, and never commit once quarantined. (Finish carries a zero
// chain, which FinishAt does not check, so some scripts commit.)
func FuzzCore(f *testing.F) {
	for _, b := range coreSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		store, err := memstore.New(memstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		env := &fakeEnv{}
		c := newCore(store, env, zap.NewNop(), 0, 0, nil)
		ctx := context.Background()
		var lastAtQuarantine storage.TID
		for _, m := range script(b) {
			wasQuarantined := c.quarantine != nil
			if err := c.step(ctx, m); err != nil {
				t.Fatalf("step: %v", err)
			}
			if c.quarantine != nil && !wasQuarantined {
				lastAtQuarantine = c.lastTID
				if len(c.inflight) != 0 || c.replay != nil {
					t.Fatal("transactions in progress after quarantine")
				}
			}
		}
		if last, _ := store.LastTransaction(ctx); last != c.lastTID || (c.quarantine != nil && last != lastAtQuarantine) {
			t.Fatalf("store at %s, core at %s, quarantined at %s", last, c.lastTID, lastAtQuarantine)
		}
	})
}

// TestFuzzCorpora keeps testdata/fuzz in step with the seeds; -update
// rewrites it.
func TestFuzzCorpora(t *testing.T) {
	for target, seeds := range map[string]map[string][]byte{"FuzzParseState": markerSeeds(), "FuzzCore": coreSeeds()} {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, b := range seeds {
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			path := filepath.Join(dir, name)
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || string(got) != want {
				t.Errorf("%s is missing or stale (%v): run go test ./replica -run TestFuzzCorpora -update", path, err)
			}
		}
	}
}
