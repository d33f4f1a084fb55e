package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Errors a Control returns (wrapped) to choose the HTTP status.
var (
	// ErrRefused: the node cannot do the operation in its current state
	// (409, with the reason).
	ErrRefused = errors.New("refused")
	// ErrNotFound: the operation names something the node does not know,
	// such as a replica missing from the primary's registry (404).
	ErrNotFound = errors.New("not found")
)

// maxControlBody bounds the JSON body of a control request.
const maxControlBody = 64 << 10

// Control is what a node does on the control endpoints. Each method
// returns what the node did, encoded as the JSON answer. The server
// serialises nothing: the node does.
type Control interface {
	// Quarantine quarantines the node itself (a replica).
	Quarantine(ctx context.Context, reason string) (any, error)
	// Release lifts the node's own quarantine and catches it up from its
	// last good transaction.
	Release(ctx context.Context) (any, error)
	// Resync replaces the node's data with a fresh copy from its primary.
	Resync(ctx context.Context) (any, error)
	// Promote makes the node (a replica) the primary, with the next epoch.
	Promote(ctx context.Context) (any, error)
	// Follow makes the node a replica of the primary at the gcs address
	// primary.
	Follow(ctx context.Context, primary string) (any, error)
	// QuarantineReplica and ReleaseReplica change a replica's entry in the
	// primary's registry.
	QuarantineReplica(ctx context.Context, name, reason string) (any, error)
	ReleaseReplica(ctx context.Context, name string) (any, error)
}

// controlRoutes registers the control endpoints on mux: with no Control
// configured they answer 501.
func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /quarantine", s.control(func(ctx context.Context, c Control, r *http.Request) (any, error) {
		var req struct {
			Reason string `json:"reason"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if err := checkReason(req.Reason); err != nil {
			return nil, err
		}
		return c.Quarantine(ctx, req.Reason)
	}))
	mux.HandleFunc("POST /release", s.control(func(ctx context.Context, c Control, r *http.Request) (any, error) {
		if err := decodeBody(r, &struct{}{}); err != nil {
			return nil, err
		}
		return c.Release(ctx)
	}))
	mux.HandleFunc("POST /resync", s.control(func(ctx context.Context, c Control, r *http.Request) (any, error) {
		if err := decodeBody(r, &struct{}{}); err != nil {
			return nil, err
		}
		return c.Resync(ctx)
	}))
	mux.HandleFunc("POST /promote", s.control(func(ctx context.Context, c Control, r *http.Request) (any, error) {
		if err := decodeBody(r, &struct{}{}); err != nil {
			return nil, err
		}
		return c.Promote(ctx)
	}))
	mux.HandleFunc("POST /follow", s.control(func(ctx context.Context, c Control, r *http.Request) (any, error) {
		var req struct {
			Primary string `json:"primary"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if req.Primary == "" {
			return nil, badRequest{errors.New(`"primary" is empty: give the new primary's gcs address as HOST:PORT`)}
		}
		return c.Follow(ctx, req.Primary)
	}))
	mux.HandleFunc("POST /replicas/{name}/quarantine", s.control(func(ctx context.Context, c Control, r *http.Request) (any, error) {
		var req struct {
			Reason string `json:"reason"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		if err := checkReason(req.Reason); err != nil {
			return nil, err
		}
		return c.QuarantineReplica(ctx, r.PathValue("name"), req.Reason)
	}))
	mux.HandleFunc("POST /replicas/{name}/release", s.control(func(ctx context.Context, c Control, r *http.Request) (any, error) {
		if err := decodeBody(r, &struct{}{}); err != nil {
			return nil, err
		}
		return c.ReleaseReplica(ctx, r.PathValue("name"))
	}))
}

// control adapts a control operation to an HTTP handler: the answer as
// JSON, or the error with the status it calls for.
func (s *Server) control(op func(context.Context, Control, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Control == nil {
			WriteError(w, http.StatusNotImplemented, errors.New("this node has no control operations"))
			return
		}
		res, err := op(r.Context(), s.cfg.Control, r)
		var bad badRequest
		switch {
		case err == nil:
			WriteJSON(w, http.StatusOK, res)
		case errors.As(err, &bad):
			WriteError(w, http.StatusBadRequest, err)
		case errors.Is(err, ErrRefused):
			WriteError(w, http.StatusConflict, err)
		case errors.Is(err, ErrNotFound):
			WriteError(w, http.StatusNotFound, err)
		default:
			s.internalError(w, strings.TrimPrefix(r.URL.Path, "/"), err)
		}
	}
}

// decodeBody decodes r's JSON body into v strictly: one object, known
// fields only, at most maxControlBody bytes. An empty body is an empty
// object.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		return badRequest{fmt.Errorf("read request body: %w", err)}
	}
	if len(body) > maxControlBody {
		return badRequest{fmt.Errorf("request body larger than %d bytes", maxControlBody)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return parseControlBody(body, v)
}

// parseControlBody decodes one JSON object with known fields only.
func parseControlBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest{fmt.Errorf("request body: %w", err)}
	}
	if dec.More() {
		return badRequest{errors.New("request body: more than one JSON value")}
	}
	return nil
}

// maxReason bounds an operator's quarantine reason.
const maxReason = 1024

func checkReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return badRequest{errors.New(`"reason" is empty: say why the node is quarantined`)}
	case len(reason) > maxReason:
		return badRequest{fmt.Errorf(`"reason" is %d bytes: keep it to %d`, len(reason), maxReason)}
	}
	return nil
}
