package admin

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"net/url"
	"strconv"

	"github.com/repld/repld/storage"
)

// Limits of the data endpoints' parameters.
const (
	// MaxDigestParts is the most sub-ranges one /digest request splits its
	// range into.
	MaxDigestParts = 4096
	// DefaultObjectsLimit and MaxObjectsLimit bound one /objects page.
	DefaultObjectsLimit = 1000
	MaxObjectsLimit     = 10000
)

// TxnResponse is the JSON body of /txn: one committed transaction, its
// records by digest rather than by data.
type TxnResponse struct {
	TID   storage.TID      `json:"tid"`
	Chain storage.Checksum `json:"chain"`
	// User and Description are the metadata as text (bytes that are not
	// UTF-8 show as U+FFFD; the chain covers the exact bytes).
	User        string `json:"user"`
	Description string `json:"description"`
	// Extension is the opaque extension, base64 (standard, padded).
	Extension []byte `json:"extension"`
	// Records are in ascending OID order; records Pack removed are absent.
	Records []TxnRecord `json:"records"`
}

// TxnRecord is one record of a TxnResponse.
type TxnRecord struct {
	OID    storage.OID `json:"oid"`
	Size   int         `json:"size"`
	SHA256 string      `json:"sha256"`
}

// DigestResponse is the JSON body of /digest.
type DigestResponse struct {
	At     storage.TID   `json:"at"`
	Ranges []DigestRange `json:"ranges"`
}

// DigestRange is the digest of the objects with From <= OID <= To as of
// the snapshot: SHA-256 over, for each object in OID order, its OID (8
// bytes, big-endian) ‖ serial (8 bytes, big-endian) ‖ SHA-256 of its data.
// Count is how many objects it covers; an empty range has the SHA-256 of
// nothing.
type DigestRange struct {
	From   storage.OID `json:"from"`
	To     storage.OID `json:"to"`
	Count  int         `json:"count"`
	Digest string      `json:"digest"`
}

// ObjectsResponse is the JSON body of /objects.
type ObjectsResponse struct {
	At      storage.TID   `json:"at"`
	Objects []ObjectEntry `json:"objects"`
	// More says the range holds objects past the last one listed: ask
	// again from its OID + 1.
	More bool `json:"more"`
}

// ObjectEntry is one object of an ObjectsResponse.
type ObjectEntry struct {
	OID    storage.OID `json:"oid"`
	Serial storage.TID `json:"serial"`
	SHA256 string      `json:"sha256"`
	Size   int         `json:"size"`
}

// badRequest is a parameter error, answered with 400.
type badRequest struct{ error }

// params reads the query parameters of the data endpoints.
type params struct{ q url.Values }

// tid parses a TID parameter; missing gives def.
func (p params) tid(name string, def storage.TID) (storage.TID, error) {
	s := p.q.Get(name)
	if s == "" {
		return def, nil
	}
	t, err := storage.ParseTID(s)
	if err != nil {
		return 0, badRequest{fmt.Errorf("%s=%q: %v; give 16 hex digits", name, s, err)}
	}
	return t, nil
}

// oid parses an OID parameter; missing gives def.
func (p params) oid(name string, def storage.OID) (storage.OID, error) {
	s := p.q.Get(name)
	if s == "" {
		return def, nil
	}
	o, err := storage.ParseOID(s)
	if err != nil {
		return 0, badRequest{fmt.Errorf("%s=%q: %v; give 16 hex digits", name, s, err)}
	}
	return o, nil
}

// count parses an integer parameter in [1, maxN]; missing gives def.
func (p params) count(name string, def, maxN int) (int, error) {
	s := p.q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxN {
		return 0, badRequest{fmt.Errorf("%s=%q: give a whole number from 1 to %d", name, s, maxN)}
	}
	return n, nil
}

// oidRange parses from and to (defaults: every OID).
func (p params) oidRange() (from, to storage.OID, err error) {
	if from, err = p.oid("from", 0); err != nil {
		return 0, 0, err
	}
	if to, err = p.oid("to", math.MaxUint64); err != nil {
		return 0, 0, err
	}
	if from > to {
		return 0, 0, badRequest{fmt.Errorf("from=%s is above to=%s; give from <= to", from, to)}
	}
	return from, to, nil
}

// requiredTID parses a TID parameter that must be present.
func (p params) requiredTID(name string) (storage.TID, error) {
	if p.q.Get(name) == "" {
		return 0, badRequest{fmt.Errorf("%s is missing; give a TID as 16 hex digits", name)}
	}
	return p.tid(name, 0)
}

// fail answers err: 400 for parameter errors, 404 for ErrNotFound, 501
// for a store without the capability, 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, op string, err error) {
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		WriteError(w, http.StatusBadRequest, bad.error)
	case errors.Is(err, storage.ErrNotFound):
		WriteError(w, http.StatusNotFound, err)
	case errors.Is(err, errors.ErrUnsupported):
		WriteError(w, http.StatusNotImplemented, fmt.Errorf("%s: this node's store does not support it: %w", op, err))
	default:
		s.internalError(w, op, err)
	}
}

// handleChainBefore answers the newest committed transaction at or before
// tid (tid 0 and the zero chain when there is none).
func (s *Server) handleChainBefore(w http.ResponseWriter, r *http.Request) {
	tid, err := params{r.URL.Query()}.requiredTID("tid")
	if err != nil {
		s.fail(w, "chain before", err)
		return
	}
	found, chain, err := storage.TxnAtOrBefore(r.Context(), s.store(), tid)
	if err != nil {
		s.fail(w, "chain before", err)
		return
	}
	WriteJSON(w, http.StatusOK, ChainResponse{TID: found.String(), Chain: chain.String()})
}

// handleChainAfter answers the oldest committed transaction after tid, or
// 404.
func (s *Server) handleChainAfter(w http.ResponseWriter, r *http.Request) {
	tid, err := params{r.URL.Query()}.requiredTID("tid")
	if err != nil {
		s.fail(w, "chain after", err)
		return
	}
	found, chain, err := storage.TxnAfter(r.Context(), s.store(), tid)
	if errors.Is(err, storage.ErrNotFound) {
		err = fmt.Errorf("this node has no transaction after %s: %w", tid, err)
	}
	if err != nil {
		s.fail(w, "chain after", err)
		return
	}
	WriteJSON(w, http.StatusOK, ChainResponse{TID: found.String(), Chain: chain.String()})
}

func (s *Server) handleTxn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tid, err := params{r.URL.Query()}.requiredTID("tid")
	if err == nil && tid == 0 {
		err = badRequest{errors.New("tid=0 is before the first transaction; give a committed TID")}
	}
	if err != nil {
		s.fail(w, "transaction", err)
		return
	}
	it, err := s.store().Iterator(ctx, tid, tid)
	if err != nil {
		s.fail(w, "transaction", err)
		return
	}
	defer it.Close()
	t, err := it.Next(ctx)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("this node has no transaction %s: %w", tid, storage.ErrNotFound)
	}
	if err != nil {
		s.fail(w, "transaction", err)
		return
	}
	resp := TxnResponse{
		TID: t.TID, Chain: t.Chain,
		User: string(t.Meta.User), Description: string(t.Meta.Description), Extension: t.Meta.Extension,
		Records: make([]TxnRecord, len(t.Records)),
	}
	if resp.Extension == nil {
		resp.Extension = []byte{}
	}
	for i, rec := range t.Records {
		sum := sha256.Sum256(rec.Data)
		resp.Records[i] = TxnRecord{OID: rec.OID, Size: len(rec.Data), SHA256: hex.EncodeToString(sum[:])}
	}
	WriteJSON(w, http.StatusOK, resp)
}

// rangeQuery reads the parameters of /digest and /objects: the OID range,
// the count parameter named count, and the snapshot at. A missing at means
// the node's last transaction; a TID the node has not reached yet is
// ErrNotFound, because the node's state there is not settled.
func (s *Server) rangeQuery(r *http.Request, count string, def, maxN int) (from, to storage.OID, n int, at storage.TID, err error) {
	p := params{r.URL.Query()}
	if from, to, err = p.oidRange(); err != nil {
		return
	}
	if n, err = p.count(count, def, maxN); err != nil {
		return
	}
	last, err := s.store().LastTransaction(r.Context())
	if err != nil {
		return
	}
	if at, err = p.tid("at", last); err == nil && at > last {
		err = fmt.Errorf("at=%s is after this node's last transaction %s: %w", at, last, storage.ErrNotFound)
	}
	return
}

// splitRange splits [from, to] into n sub-ranges of equal width (to one
// OID), fewer when the range holds fewer than n OIDs. It returns each
// sub-range's first OID; the last sub-range ends at to.
func splitRange(from, to storage.OID, n int) []storage.OID {
	span := uint64(to - from) // the range holds span+1 OIDs
	if uint64(n)-1 > span {
		n = int(span) + 1
	}
	starts := make([]storage.OID, n)
	for i := range starts {
		// from + floor(i*(span+1)/n), in 128 bits: span+1 may be 2^64.
		hi, lo := bits.Mul64(uint64(i), span)
		lo, carry := bits.Add64(lo, uint64(i), 0)
		q, _ := bits.Div64(hi+carry, lo, uint64(n))
		starts[i] = from + storage.OID(q)
	}
	return starts
}

func (s *Server) handleDigest(w http.ResponseWriter, r *http.Request) {
	from, to, parts, at, err := s.rangeQuery(r, "parts", 1, MaxDigestParts)
	if err != nil {
		s.fail(w, "digest", err)
		return
	}
	starts := splitRange(from, to, parts)
	resp := DigestResponse{At: at, Ranges: make([]DigestRange, len(starts))}
	h := sha256.New()
	cur := 0
	// finish closes sub-range cur and starts the next one.
	finish := func() {
		resp.Ranges[cur].Digest = hex.EncodeToString(h.Sum(nil))
		h.Reset()
		cur++
	}
	var buf [16]byte
	for st, err := range storage.ListObjects(r.Context(), s.store(), from, to, at) {
		if err != nil {
			s.fail(w, "digest", err)
			return
		}
		for cur+1 < len(starts) && st.OID >= starts[cur+1] {
			finish()
		}
		binary.BigEndian.PutUint64(buf[:8], uint64(st.OID))
		binary.BigEndian.PutUint64(buf[8:], uint64(st.Serial))
		sum := sha256.Sum256(st.Data)
		h.Write(buf[:])
		h.Write(sum[:])
		resp.Ranges[cur].Count++
	}
	for cur < len(starts) {
		finish()
	}
	for i, start := range starts {
		resp.Ranges[i].From, resp.Ranges[i].To = start, to
		if i+1 < len(starts) {
			resp.Ranges[i].To = starts[i+1] - 1
		}
	}
	WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) handleObjects(w http.ResponseWriter, r *http.Request) {
	from, to, limit, at, err := s.rangeQuery(r, "limit", DefaultObjectsLimit, MaxObjectsLimit)
	if err != nil {
		s.fail(w, "objects", err)
		return
	}
	resp := ObjectsResponse{At: at, Objects: []ObjectEntry{}}
	for st, err := range storage.ListObjects(r.Context(), s.store(), from, to, at) {
		if err != nil {
			s.fail(w, "objects", err)
			return
		}
		if len(resp.Objects) == limit {
			resp.More = true
			break
		}
		sum := sha256.Sum256(st.Data)
		resp.Objects = append(resp.Objects, ObjectEntry{OID: st.OID, Serial: st.Serial, SHA256: hex.EncodeToString(sum[:]), Size: len(st.Data)})
	}
	WriteJSON(w, http.StatusOK, resp)
}
