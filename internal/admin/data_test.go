package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/repld/repld/storage"
)

// commitObjects commits one transaction storing the given objects (new
// ones with serial 0, others at their current serial).
func commitObjects(t *testing.T, s storage.Storage, meta storage.TxnMeta, objs map[storage.OID]string) storage.Commit {
	t.Helper()
	return commitObjectsAt(t, s, 0, meta, objs)
}

// commitObjectsAt is commitObjects at a given TID (0: the store chooses).
func commitObjectsAt(t *testing.T, s storage.Storage, tid storage.TID, meta storage.TxnMeta, objs map[storage.OID]string) storage.Commit {
	t.Helper()
	ctx := t.Context()
	txn, err := s.Begin(ctx, meta)
	if err != nil {
		t.Fatal(err)
	}
	for oid, data := range objs {
		_, serial, err := s.Load(ctx, oid)
		if err != nil {
			serial = 0
		}
		if err := txn.Store(ctx, oid, serial, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	var c storage.Commit
	if tid == 0 {
		c, err = txn.Finish(ctx)
	} else {
		c, err = txn.FinishAt(ctx, tid, storage.Checksum{})
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func getJSON(t *testing.T, h http.Handler, target string, wantCode int, v any) string {
	t.Helper()
	code, body := get(t, h, "GET", target)
	if code != wantCode {
		t.Fatalf("GET %s = %d %s; want %d", target, code, body, wantCode)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("GET %s: decode %q: %v", target, body, err)
		}
	}
	return body
}

func dataServer(t *testing.T, store storage.Storage) http.Handler {
	t.Helper()
	return newTestServer(t, &testNode{store: store}, prometheus.NewRegistry()).Handler()
}

func TestChainBeforeAfter(t *testing.T) {
	store := newStore(t)
	c1 := commitObjects(t, store, storage.TxnMeta{}, map[storage.OID]string{1: "a"})
	c2 := commitObjects(t, store, storage.TxnMeta{}, map[storage.OID]string{1: "b"})
	h := dataServer(t, store)
	zero := storage.Checksum{}
	for _, tc := range []struct {
		path string
		tid  storage.TID
		code int
		want storage.Commit
	}{
		{"before", c1.TID - 1, 200, storage.Commit{Chain: zero}},
		{"before", c1.TID, 200, c1},
		{"before", c2.TID - 1, 200, c1},
		{"before", math.MaxUint64, 200, c2},
		{"after", 0, 200, c1},
		{"after", c1.TID, 200, c2},
		{"after", c2.TID, 404, storage.Commit{}},
		{"after", math.MaxUint64, 404, storage.Commit{}},
	} {
		var got ChainResponse
		target := fmt.Sprintf("/chain/%s?tid=%s", tc.path, tc.tid)
		if tc.code != 200 {
			getJSON(t, h, target, tc.code, nil)
			continue
		}
		getJSON(t, h, target, 200, &got)
		if got.TID != tc.want.TID.String() || got.Chain != tc.want.Chain.String() {
			t.Errorf("%s = %+v; want %s %s", target, got, tc.want.TID, tc.want.Chain)
		}
	}
	for _, target := range []string{"/chain/before", "/chain/after?tid=xyz", "/chain/before?tid=12345678901234567"} {
		body := getJSON(t, h, target, 400, nil)
		if !strings.Contains(body, "tid") {
			t.Errorf("%s: error %q does not name the parameter", target, body)
		}
	}
}

func TestTxn(t *testing.T) {
	store := newStore(t)
	meta := storage.TxnMeta{User: []byte("alice"), Description: []byte("fix"), Extension: []byte{0, 1, 2}}
	c := commitObjects(t, store, meta, map[storage.OID]string{7: "seven", 2: ""})
	h := dataServer(t, store)
	var got TxnResponse
	body := getJSON(t, h, "/txn?tid="+c.TID.String(), 200, &got)
	if got.TID != c.TID || got.Chain != c.Chain || got.User != "alice" || got.Description != "fix" || string(got.Extension) != "\x00\x01\x02" {
		t.Errorf("/txn = %+v", got)
	}
	if !strings.Contains(body, `"extension": "`+base64.StdEncoding.EncodeToString([]byte{0, 1, 2})+`"`) {
		t.Errorf("/txn does not give the extension in base64: %s", body)
	}
	seven := sha256.Sum256([]byte("seven"))
	empty := sha256.Sum256(nil)
	want := []TxnRecord{{OID: 2, Size: 0, SHA256: hex.EncodeToString(empty[:])}, {OID: 7, Size: 5, SHA256: hex.EncodeToString(seven[:])}}
	if fmt.Sprint(got.Records) != fmt.Sprint(want) {
		t.Errorf("/txn records = %v; want %v", got.Records, want)
	}
	getJSON(t, h, "/txn?tid="+(c.TID+1).String(), 404, nil)
	getJSON(t, h, "/txn?tid=0", 400, nil)
	getJSON(t, h, "/txn", 400, nil)
}

// digestOf is the /digest contract computed independently.
func digestOf(objs []ObjectEntry) string {
	h := sha256.New()
	for _, o := range objs {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(o.OID)))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(o.Serial)))
		sum, _ := hex.DecodeString(o.SHA256)
		h.Write(sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestDigestAndObjects(t *testing.T) {
	a, b := newStore(t), newStore(t)
	objs := map[storage.OID]string{}
	for i := range 40 {
		objs[storage.OID(i*100)] = fmt.Sprintf("object %d", i)
	}
	objs[math.MaxUint64] = "last"
	first := commitObjects(t, a, storage.TxnMeta{}, objs)
	commitObjectsAt(t, b, first.TID, storage.TxnMeta{}, objs)
	ha, hb := dataServer(t, a), dataServer(t, b)

	// The same state gives the same digests.
	var da, db DigestResponse
	getJSON(t, ha, "/digest?parts=16", 200, &da)
	getJSON(t, hb, "/digest?parts=16", 200, &db)
	if len(da.Ranges) != 16 || da.At == 0 {
		t.Fatalf("/digest?parts=16 = %+v", da)
	}
	for i := range da.Ranges {
		if da.Ranges[i].Digest != db.Ranges[i].Digest {
			t.Fatalf("range %d differs between equal states", i)
		}
	}

	// A changed object changes exactly the digest of its range.
	commitObjects(t, b, storage.TxnMeta{}, map[storage.OID]string{1200: "changed"})
	getJSON(t, hb, fmt.Sprintf("/digest?parts=16&at=%s", first.TID), 200, &db) // the old snapshot is still equal
	for i := range da.Ranges {
		if da.Ranges[i].Digest != db.Ranges[i].Digest {
			t.Fatalf("at the earlier snapshot, range %d differs", i)
		}
	}
	getJSON(t, hb, "/digest?parts=16", 200, &db)
	var differ []int
	for i := range da.Ranges {
		if da.Ranges[i].Digest != db.Ranges[i].Digest {
			differ = append(differ, i)
		}
	}
	if len(differ) != 1 || da.Ranges[differ[0]].From > 1200 || da.Ranges[differ[0]].To < 1200 {
		t.Fatalf("ranges differing after changing object 1200: %v of %+v", differ, da.Ranges)
	}

	// Drilling down: the leaf listing of the differing range names the
	// object, and its digest follows the contract.
	r := db.Ranges[differ[0]]
	var la, lb ObjectsResponse
	q := fmt.Sprintf("/objects?from=%s&to=%s", r.From, r.To)
	getJSON(t, ha, q, 200, &la)
	getJSON(t, hb, q, 200, &lb)
	if len(la.Objects) != r.Count || len(lb.Objects) != r.Count || la.More {
		t.Fatalf("%s: %d and %d objects; want %d", q, len(la.Objects), len(lb.Objects), r.Count)
	}
	if got := digestOf(lb.Objects); got != r.Digest {
		t.Fatalf("digest of the listing %s != /digest's %s", got, r.Digest)
	}
	for i := range la.Objects {
		if (la.Objects[i] != lb.Objects[i]) != (la.Objects[i].OID == 1200) {
			t.Errorf("listing entry %d: %+v vs %+v", i, la.Objects[i], lb.Objects[i])
		}
	}

	// Pagination covers every object once.
	var all []ObjectEntry
	from := storage.OID(0)
	for page := 0; ; page++ {
		if page > len(objs) {
			t.Fatal("pagination does not end")
		}
		var resp ObjectsResponse
		getJSON(t, ha, fmt.Sprintf("/objects?from=%s&limit=7", from), 200, &resp)
		all = append(all, resp.Objects...)
		if !resp.More {
			break
		}
		from = resp.Objects[len(resp.Objects)-1].OID + 1
	}
	if len(all) != len(objs) || all[len(all)-1].OID != math.MaxUint64 {
		t.Fatalf("paged listing has %d objects, last %v; want %d ending at the largest OID", len(all), all[len(all)-1], len(objs))
	}
	var whole DigestResponse
	getJSON(t, ha, "/digest", 200, &whole)
	if len(whole.Ranges) != 1 || whole.Ranges[0].Count != len(objs) || whole.Ranges[0].Digest != digestOf(all) ||
		whole.Ranges[0].From != 0 || whole.Ranges[0].To != math.MaxUint64 {
		t.Fatalf("/digest of everything = %+v; want one range of %d objects, digest %s", whole.Ranges, len(objs), digestOf(all))
	}

	// A small range gets fewer parts, never empty ones.
	getJSON(t, ha, "/digest?from=0&to=2&parts=4", 200, &da)
	if len(da.Ranges) != 3 || da.Ranges[0].Count != 1 || da.Ranges[2].To != 2 {
		t.Fatalf("/digest of 3 OIDs in 4 parts = %+v", da.Ranges)
	}

	for target, code := range map[string]int{
		"/digest?parts=0":                       400,
		"/digest?parts=4097":                    400,
		"/digest?parts=x":                       400,
		"/digest?from=5&to=4":                   400,
		"/digest?at=ffffffffffffffff":           404,
		"/objects?limit=0":                      400,
		"/objects?limit=10001":                  400,
		"/objects?from=zz":                      400,
		"/objects?at=" + url.QueryEscape("0x1"): 200,
	} {
		getJSON(t, ha, target, code, nil)
	}
}

func TestSplitRange(t *testing.T) {
	for _, tc := range []struct {
		from, to storage.OID
		n        int
	}{
		{0, math.MaxUint64, 1}, {0, math.MaxUint64, 4096}, {0, math.MaxUint64, 3},
		{5, 5, 10}, {10, 20, 4}, {math.MaxUint64 - 2, math.MaxUint64, 4096}, {1, 1 << 40, 7},
	} {
		starts := splitRange(tc.from, tc.to, tc.n)
		span := uint64(tc.to - tc.from)
		wantN := tc.n
		if uint64(wantN-1) > span {
			wantN = int(span + 1)
		}
		if len(starts) != wantN || starts[0] != tc.from {
			t.Fatalf("splitRange(%s, %s, %d) = %d parts from %s; want %d from %s", tc.from, tc.to, tc.n, len(starts), starts[0], wantN, tc.from)
		}
		for i := 1; i < len(starts); i++ {
			if starts[i] <= starts[i-1] || starts[i] > tc.to {
				t.Fatalf("splitRange(%s, %s, %d): part %d starts at %s after %s", tc.from, tc.to, tc.n, i, starts[i], starts[i-1])
			}
		}
	}
	// The full space in 4096 parts: 2^52 OIDs each.
	if s := splitRange(0, math.MaxUint64, 4096); s[1] != 1<<52 || s[4095] != 4095<<52 {
		t.Fatalf("full range parts start at %s, %s", s[1], s[4095])
	}
}

// hidden hides the optional capabilities of a store.
type hidden struct{ storage.Storage }

func TestDataWithoutCapabilities(t *testing.T) {
	store := newStore(t)
	c1 := commitObjects(t, store, storage.TxnMeta{}, map[storage.OID]string{1: "a"})
	c2 := commitObjects(t, store, storage.TxnMeta{}, map[storage.OID]string{1: "b"})
	h := dataServer(t, hidden{store})
	var got ChainResponse
	getJSON(t, h, "/chain/before?tid="+(c2.TID-1).String(), 200, &got)
	if got.TID != c1.TID.String() {
		t.Errorf("/chain/before without TxnSeeker = %+v; want %s", got, c1.TID)
	}
	getJSON(t, h, "/chain/after?tid="+c1.TID.String(), 200, &got)
	if got.TID != c2.TID.String() {
		t.Errorf("/chain/after without TxnSeeker = %+v; want %s", got, c2.TID)
	}
	if body := getJSON(t, h, "/digest", 501, nil); !strings.Contains(body, "does not support") {
		t.Errorf("/digest without ObjectLister: %s", body)
	}
}

func TestStatusHasAdminAddress(t *testing.T) {
	s := newTestServer(t, &testNode{store: newStore(t)}, prometheus.NewRegistry())
	var st map[string]string
	getJSON(t, s.Handler(), "/status", 200, &st)
	if st["admin"] != s.Addr().String() || st["role"] != "primary" {
		t.Fatalf("/status = %v; want admin %s and the node's fields", st, s.Addr())
	}
}

// FuzzDataQuery sends arbitrary query strings to the data endpoints: each
// answers 200, 400 or 404, never panics and never a server error.
func FuzzDataQuery(f *testing.F) {
	for _, q := range []string{
		"tid=0000000000000001", "at=1&from=0&to=ffffffffffffffff&parts=4096", "from=5&to=4",
		"parts=-1", "limit=99999999999999999999", "tid=0x", "at=%zz", "from=1&from=2", "tid=" + strings.Repeat("f", 17),
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		store := newStore(t)
		commitObjects(t, store, storage.TxnMeta{}, map[storage.OID]string{1: "a", math.MaxUint64: "z"})
		h := dataServer(t, store)
		for _, path := range []string{"/chain/before", "/chain/after", "/txn", "/digest", "/objects"} {
			req := httptest.NewRequestWithContext(t.Context(), "GET", path, nil)
			req.URL.RawQuery = query // any bytes, as a client may send
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if code := rec.Code; code != 200 && code != 400 && code != 404 {
				t.Fatalf("%s?%q = %d %s", path, query, code, rec.Body)
			}
		}
	})
}
