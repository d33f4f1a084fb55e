package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/repld/repld/storage"
)

// maxResponse bounds what replctl reads from a node: the largest answer, a
// digest of 4096 ranges or a page of objects, is well under a megabyte.
const maxResponse = 16 << 20

// Errors callers branch on; a *nodeError wraps them.
var (
	// errNotFound: the node answered 404 (it has no such transaction).
	errNotFound = errors.New("not found")
	// errRefused: the node answered 409, refusing a control operation.
	errRefused = errors.New("refused")
)

// nodeError is any failure talking to one node: it names the node, the
// request and why, so an operator knows where to look.
type nodeError struct {
	Node string
	Op   string
	Err  error
}

func (e *nodeError) Error() string { return fmt.Sprintf("node %s: %s: %v", e.Node, e.Op, e.Err) }
func (e *nodeError) Unwrap() error { return e.Err }

// client talks to one node's admin HTTP endpoint.
type client struct {
	node string // host:port as the operator gave it
	http *http.Client
}

func newClient(node string, timeout time.Duration, tr http.RoundTripper) *client {
	return &client{node: node, http: &http.Client{Timeout: timeout, Transport: tr}}
}

// do sends one request and decodes a 2xx JSON answer into out (nil: ignore
// the body). Non-2xx answers become errors carrying the node's own
// {"error": ...} message.
func (c *client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	op := method + " " + path
	u := url.URL{Scheme: "http", Host: c.node, Path: path, RawQuery: query.Encode()}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &nodeError{c.node, op, err}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return &nodeError{c.node, op, err}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &nodeError{c.node, op, explainTransport(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return &nodeError{c.node, op, fmt.Errorf("read answer: %w", err)}
	}
	if len(data) > maxResponse {
		return &nodeError{c.node, op, fmt.Errorf("answer larger than %d bytes", maxResponse)}
	}
	if resp.StatusCode/100 != 2 {
		return &nodeError{c.node, op, httpError(resp.StatusCode, data)}
	}
	if out == nil {
		return nil
	}
	if err := decodeAnswer(data, out); err != nil {
		return &nodeError{c.node, op, err}
	}
	return nil
}

// explainTransport adds the likely cause to the errors an operator meets.
func explainTransport(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the node and the request are named by nodeError
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("no answer within the timeout (%w); raise --timeout if the node is busy", err)
	default:
		return fmt.Errorf("%w; is the node running and is this its admin address?", err)
	}
}

// httpError turns a non-2xx answer into an error with the node's reason.
func httpError(code int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	reason := string(bytes.TrimSpace(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		reason = e.Error
	}
	if len(reason) > 500 {
		reason = reason[:500] + "…"
	}
	switch code {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %s", errNotFound, reason)
	case http.StatusConflict:
		return fmt.Errorf("%w: %s", errRefused, reason)
	}
	return fmt.Errorf("HTTP %d: %s", code, reason)
}

// validator is implemented by answers that check their own consistency
// after decoding, so a malformed answer is rejected whole.
type validator interface{ validate() error }

// decodeAnswer decodes one JSON answer strictly: one value, then nothing.
func decodeAnswer(data []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("malformed answer: %w", err)
	}
	if dec.More() {
		return errors.New("malformed answer: data after the JSON value")
	}
	if v, ok := out.(validator); ok {
		if err := v.validate(); err != nil {
			return fmt.Errorf("malformed answer: %w", err)
		}
	}
	return nil
}

// hash is a SHA-256 value as hex in JSON.
type hash [32]byte

func (h hash) String() string               { return hex.EncodeToString(h[:]) }
func (h hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }
func (h *hash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash %q: want 64 hex digits", b)
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// Quarantine is a node's quarantine record in /status.
type Quarantine struct {
	Reason string      `json:"reason"`
	Code   string      `json:"code"`
	TID    storage.TID `json:"tid"`
	Time   time.Time   `json:"time"`
}

// CatchUp is a replica's catch-up progress in /status.
type CatchUp struct {
	DoneTID   storage.TID `json:"done_tid"`
	TargetTID storage.TID `json:"target_tid"`
}

// RegistryEntry is a replica as the primary's /status lists it.
type RegistryEntry struct {
	Name            string      `json:"name"`
	State           string      `json:"state"`
	LastAppliedTID  storage.TID `json:"last_applied_tid"`
	LagTransactions uint64      `json:"lag_transactions"`
	LagSeconds      float64     `json:"lag_seconds"`
	Quarantine      *Quarantine `json:"quarantine,omitempty"`
}

// NodeStatus is the union of a primary's and a replica's /status: the
// fields replctl uses.
type NodeStatus struct {
	Name       string          `json:"name"`
	Role       string          `json:"role"`
	Epoch      uint64          `json:"epoch"`
	LastTID    storage.TID     `json:"last_tid"`
	State      string          `json:"state"`
	Primary    string          `json:"primary"`
	LagSeconds float64         `json:"lag_seconds"`
	Quarantine *Quarantine     `json:"quarantine"`
	CatchUp    *CatchUp        `json:"catch_up"`
	Replicas   []RegistryEntry `json:"replicas"`
}

func (s *NodeStatus) validate() error {
	switch s.Role {
	case "primary", "replica":
	default:
		return fmt.Errorf("role %q: want primary or replica", s.Role)
	}
	if s.Name == "" {
		return errors.New("no node name")
	}
	return nil
}

// ChainPoint is a TID and the chain checksum at it.
type ChainPoint struct {
	TID   storage.TID      `json:"tid"`
	Chain storage.Checksum `json:"chain"`
}

// Record is one record of a transaction in /txn.
type Record struct {
	OID    storage.OID `json:"oid"`
	Size   int64       `json:"size"`
	SHA256 hash        `json:"sha256"`
}

// Txn is the /txn answer: one committed transaction.
type Txn struct {
	TID         storage.TID      `json:"tid"`
	Chain       storage.Checksum `json:"chain"`
	User        string           `json:"user"`
	Description string           `json:"description"`
	Extension   []byte           `json:"extension"`
	Records     []Record         `json:"records"`
}

func (t *Txn) validate() error {
	for i := 1; i < len(t.Records); i++ {
		if t.Records[i].OID <= t.Records[i-1].OID {
			return fmt.Errorf("records not in ascending OID order at %s", t.Records[i].OID)
		}
	}
	return nil
}

// Range is one sub-range of a /digest answer.
type Range struct {
	From   storage.OID `json:"from"`
	To     storage.OID `json:"to"`
	Count  uint64      `json:"count"`
	Digest hash        `json:"digest"`
}

// Digest is the /digest answer.
type Digest struct {
	At     storage.TID `json:"at"`
	Ranges []Range     `json:"ranges"`
}

func (d *Digest) validate() error {
	for i, r := range d.Ranges {
		if r.To < r.From {
			return fmt.Errorf("range %d: to %s below from %s", i, r.To, r.From)
		}
		if i > 0 && r.From <= d.Ranges[i-1].To {
			return fmt.Errorf("range %d overlaps the one before", i)
		}
	}
	return nil
}

// Object is one object of an /objects answer: its current revision.
type Object struct {
	OID    storage.OID `json:"oid"`
	Serial storage.TID `json:"serial"`
	SHA256 hash        `json:"sha256"`
	Size   int64       `json:"size"`
}

// Objects is the /objects answer.
type Objects struct {
	Objects []Object `json:"objects"`
	More    bool     `json:"more"`
}

func (o *Objects) validate() error {
	for i := 1; i < len(o.Objects); i++ {
		if o.Objects[i].OID <= o.Objects[i-1].OID {
			return fmt.Errorf("objects not in ascending OID order at %s", o.Objects[i].OID)
		}
	}
	return nil
}

func tidQuery(key string, t storage.TID) url.Values { return url.Values{key: {t.String()}} }

func (c *client) status(ctx context.Context) (*NodeStatus, error) {
	var s NodeStatus
	return &s, c.do(ctx, http.MethodGet, "/status", nil, nil, &s)
}

// chainAt is the chain at exactly tid (errNotFound if the node lacks it).
func (c *client) chainAt(ctx context.Context, tid storage.TID) (ChainPoint, error) {
	var p ChainPoint
	return p, c.do(ctx, http.MethodGet, "/chain", tidQuery("tid", tid), nil, &p)
}

// chainBefore is the newest committed TID ≤ tid and its chain (zero if none).
func (c *client) chainBefore(ctx context.Context, tid storage.TID) (ChainPoint, error) {
	var p ChainPoint
	return p, c.do(ctx, http.MethodGet, "/chain/before", tidQuery("tid", tid), nil, &p)
}

// chainAfter is the oldest committed TID > tid (errNotFound if none).
func (c *client) chainAfter(ctx context.Context, tid storage.TID) (ChainPoint, error) {
	var p ChainPoint
	return p, c.do(ctx, http.MethodGet, "/chain/after", tidQuery("tid", tid), nil, &p)
}

func (c *client) txn(ctx context.Context, tid storage.TID) (*Txn, error) {
	var t Txn
	return &t, c.do(ctx, http.MethodGet, "/txn", tidQuery("tid", tid), nil, &t)
}

func (c *client) digest(ctx context.Context, at storage.TID, from, to storage.OID, parts int) (*Digest, error) {
	q := url.Values{"at": {at.String()}, "from": {from.String()}, "to": {to.String()}, "parts": {strconv.Itoa(parts)}}
	var d Digest
	if err := c.do(ctx, http.MethodGet, "/digest", q, nil, &d); err != nil {
		return nil, err
	}
	if len(d.Ranges) == 0 || d.Ranges[0].From != from || d.Ranges[len(d.Ranges)-1].To != to {
		return nil, &nodeError{c.node, "GET /digest", fmt.Errorf("malformed answer: ranges do not cover %s..%s", from, to)}
	}
	return &d, nil
}

func (c *client) objects(ctx context.Context, at storage.TID, from, to storage.OID, limit int) (*Objects, error) {
	q := url.Values{"at": {at.String()}, "from": {from.String()}, "to": {to.String()}, "limit": {strconv.Itoa(limit)}}
	var o Objects
	if err := c.do(ctx, http.MethodGet, "/objects", q, nil, &o); err != nil {
		return nil, err
	}
	for _, ob := range o.Objects {
		if ob.OID < from || ob.OID > to {
			return nil, &nodeError{c.node, "GET /objects", fmt.Errorf("malformed answer: object %s outside %s..%s", ob.OID, from, to)}
		}
	}
	if len(o.Objects) > limit {
		return nil, &nodeError{c.node, "GET /objects", fmt.Errorf("malformed answer: %d objects, asked for at most %d", len(o.Objects), limit)}
	}
	return &o, nil
}

// post sends a control request; the answer is passed on as JSON.
func (c *client) post(ctx context.Context, path string, in any) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, http.MethodPost, path, nil, in, &out)
	if errors.Is(err, errNotFound) {
		err = fmt.Errorf("%w (a node that does not offer this operation answers so; is it running an older repld?)", err)
	}
	return out, err
}
