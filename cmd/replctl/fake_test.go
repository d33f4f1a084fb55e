package main

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/storage"
)

// baseTID is the first TID of the fake histories: fixed, so runs repeat.
var baseTID = storage.TIDFromTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

// tidN is the n-th TID of a fake history.
func tidN(n int) storage.TID { return baseTID + storage.TID(n)*1000 }

type fakeTxn struct {
	tid        storage.TID
	user, desc string
	recs       map[storage.OID][]byte
}

// fakeNode serves the admin API of one node over an in-memory history.
type fakeNode struct {
	mu      sync.Mutex
	st      NodeStatus
	txns    []fakeTxn
	corrupt map[storage.OID][]byte // state that differs with no trace in the history
	posts   []string
	// onPost answers a control request; nil answers {"ok": true}.
	onPost func(f *fakeNode, path string, body map[string]string) (int, any)
	// onStatus runs (under the lock) before each /status answer.
	onStatus func(f *fakeNode)
	srv      *httptest.Server
}

func newFake(t *testing.T, name, role string) *fakeNode {
	t.Helper()
	f := &fakeNode{st: NodeStatus{Name: name, Role: role, Epoch: 1}, corrupt: map[storage.OID][]byte{}}
	if role == "replica" {
		f.st.State = "live"
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// commit appends a transaction; data maps OIDs to contents.
func (f *fakeNode) commit(tid storage.TID, user string, data map[storage.OID]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	recs := map[storage.OID][]byte{}
	for oid, d := range data {
		recs[oid] = []byte(d)
	}
	f.txns = append(f.txns, fakeTxn{tid: tid, user: user, desc: "txn " + tid.String(), recs: recs})
	slices.SortFunc(f.txns, func(a, b fakeTxn) int { return cmp.Compare(a.tid, b.tid) })
}

// history commits n transactions on every node given, each writing
// objectsPer objects: transaction i writes OIDs i*objectsPer+1... and
// rewrites OID 1.
func history(n, objectsPer int, nodes ...*fakeNode) {
	for i := range n {
		data := map[storage.OID]string{1: fmt.Sprintf("root v%d", i)}
		for k := range objectsPer {
			oid := storage.OID(i*objectsPer + k + 2)
			data[oid] = fmt.Sprintf("object %d", oid)
		}
		for _, f := range nodes {
			f.commit(tidN(i+1), "alice", data)
		}
	}
}

// chains returns every transaction's chain value, in order.
func (f *fakeNode) chains() []storage.Checksum {
	var prev storage.Checksum
	out := make([]storage.Checksum, len(f.txns))
	for i, x := range f.txns {
		var rds []storage.RecordDigest
		for oid, d := range x.recs {
			rds = append(rds, storage.DigestRecord(oid, d))
		}
		prev = storage.NextChain(prev, x.tid, storage.TxnMeta{User: []byte(x.user), Description: []byte(x.desc)}, rds)
		out[i] = prev
	}
	return out
}

type fakeObj struct {
	serial storage.TID
	data   []byte
}

// state is the newest revision of every object with TID ≤ at.
func (f *fakeNode) state(at storage.TID) map[storage.OID]fakeObj {
	m := map[storage.OID]fakeObj{}
	for _, x := range f.txns {
		if x.tid > at {
			break
		}
		for oid, d := range x.recs {
			m[oid] = fakeObj{x.tid, d}
		}
	}
	for oid, d := range f.corrupt {
		if o, ok := m[oid]; ok {
			m[oid] = fakeObj{o.serial, d}
		}
	}
	return m
}

func writeJSONResp(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func qTID(q url.Values, k string) storage.TID {
	t, _ := storage.ParseTID(q.Get(k))
	return t
}

func qOID(q url.Values, k string) storage.OID {
	o, _ := storage.ParseOID(q.Get(k))
	return o
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	chains := f.chains()
	point := func(i int) ChainPoint { return ChainPoint{TID: f.txns[i].tid, Chain: chains[i]} }
	notFound := func() { writeJSONResp(w, 404, map[string]string{"error": "no such transaction"}) }
	if r.Method == http.MethodPost {
		var body map[string]string
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
		f.posts = append(f.posts, r.URL.Path)
		if f.onPost != nil {
			code, v := f.onPost(f, r.URL.Path, body)
			writeJSONResp(w, code, v)
			return
		}
		writeJSONResp(w, 200, map[string]bool{"ok": true})
		return
	}
	switch r.URL.Path {
	case "/status":
		if f.onStatus != nil {
			f.onStatus(f)
			chains = f.chains()
		}
		st := f.st
		if n := len(f.txns); n > 0 {
			st.LastTID = f.txns[n-1].tid
		}
		writeJSONResp(w, 200, st)
	case "/chain":
		tid := qTID(q, "tid")
		for i, x := range f.txns {
			if x.tid == tid {
				writeJSONResp(w, 200, point(i))
				return
			}
		}
		notFound()
	case "/chain/before":
		tid, p := qTID(q, "tid"), ChainPoint{}
		for i, x := range f.txns {
			if x.tid <= tid {
				p = point(i)
			}
		}
		writeJSONResp(w, 200, p)
	case "/chain/after":
		tid := qTID(q, "tid")
		for i, x := range f.txns {
			if x.tid > tid {
				writeJSONResp(w, 200, point(i))
				return
			}
		}
		notFound()
	case "/txn":
		tid := qTID(q, "tid")
		for i, x := range f.txns {
			if x.tid != tid {
				continue
			}
			t := Txn{TID: x.tid, Chain: chains[i], User: x.user, Description: x.desc, Records: []Record{}}
			for oid, d := range x.recs {
				t.Records = append(t.Records, Record{OID: oid, Size: int64(len(d)), SHA256: sha256.Sum256(d)})
			}
			slices.SortFunc(t.Records, func(a, b Record) int { return cmp.Compare(a.OID, b.OID) })
			writeJSONResp(w, 200, t)
			return
		}
		notFound()
	case "/digest", "/objects":
		if n := len(f.txns); n > 0 && qTID(q, "at") > f.txns[n-1].tid || n == 0 && qTID(q, "at") > 0 {
			writeJSONResp(w, 404, map[string]string{"error": "at is after this node's last transaction"})
			return
		}
		if r.URL.Path == "/digest" {
			f.serveDigest(w, q)
			return
		}
		st := f.state(qTID(q, "at"))
		from, to := qOID(q, "from"), qOID(q, "to")
		limit, _ := strconv.Atoi(q.Get("limit"))
		var oids []storage.OID
		for oid := range st {
			if oid >= from && oid <= to {
				oids = append(oids, oid)
			}
		}
		slices.Sort(oids)
		out := Objects{Objects: []Object{}}
		for _, oid := range oids {
			if len(out.Objects) == limit {
				out.More = true
				break
			}
			o := st[oid]
			out.Objects = append(out.Objects, Object{OID: oid, Serial: o.serial, SHA256: sha256.Sum256(o.data), Size: int64(len(o.data))})
		}
		writeJSONResp(w, 200, out)
	default:
		writeJSONResp(w, 404, map[string]string{"error": "no route"})
	}
}

// serveDigest splits [from, to] into at most parts equal ranges, as the
// admin API specifies.
func (f *fakeNode) serveDigest(w http.ResponseWriter, q url.Values) {
	at := qTID(q, "at")
	st := f.state(at)
	from, to := qOID(q, "from"), qOID(q, "to")
	parts, _ := strconv.Atoi(q.Get("parts"))
	step := uint64(to-from)/uint64(parts) + 1
	d := Digest{At: at}
	for k := range parts {
		lo := from + storage.OID(uint64(k)*step)
		if k > 0 && lo <= d.Ranges[k-1].To {
			break // wrapped past 2^64
		}
		hi := lo + storage.OID(step-1)
		if k == parts-1 || hi < lo || hi > to {
			hi = to
		}
		var oids []storage.OID
		for oid := range st {
			if oid >= lo && oid <= hi {
				oids = append(oids, oid)
			}
		}
		slices.Sort(oids)
		h := sha256.New()
		for _, oid := range oids {
			b := oid.Bytes()
			h.Write(b[:])
			s := storage.OID(st[oid].serial).Bytes()
			h.Write(s[:])
			sum := sha256.Sum256(st[oid].data)
			h.Write(sum[:])
		}
		var r Range
		r.From, r.To, r.Count = lo, hi, uint64(len(oids))
		h.Sum(r.Digest[:0])
		d.Ranges = append(d.Ranges, r)
		if hi == to {
			break
		}
	}
	writeJSONResp(w, 200, d)
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
