package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/repld/repld/storage"
)

// Default timeouts of the HTTP server, applied to zero fields of Config.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// maxHeaderBytes bounds request headers; the endpoints take no more than a
// short query string.
const maxHeaderBytes = 16 << 10

// ErrShuttingDown is what /healthz reports once Shutdown has begun.
var ErrShuttingDown = errors.New("admin: node is shutting down")

// Config configures a Server. Addr, Status and Store are required.
type Config struct {
	// Addr is the host:port to listen on; port 0 picks a free one
	// (Server.Addr reports it).
	Addr string
	// Status returns the node's status, encoded as JSON by /status.
	Status func() any
	// Health reports why the node should not be sent work (nil: healthy).
	// Nil means always healthy.
	Health func() error
	// Store is read by /chain (LastTransaction and Chain only).
	Store storage.Storage
	// CurrentStore, when set, is called by every request instead of
	// reading Store, for a node whose store changes (a replica promoted to
	// primary); Store may then be nil.
	CurrentStore func() storage.Storage
	// Control does the work of the control endpoints; nil answers them
	// with 501.
	Control Control
	// Gatherer serves /metrics; nil serves an empty exposition.
	Gatherer prometheus.Gatherer
	// Handlers adds routes, keyed by http.ServeMux patterns
	// ("POST /debug/commit").
	Handlers map[string]http.Handler
	// Logger receives request errors; nil discards them.
	Logger *zap.Logger

	// Server timeouts; zero fields take the defaults above.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

func (c *Config) setDefaults() {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.NewRegistry()
	}
}

// Validate reports every invalid setting (after defaults), naming the
// setting, its value and the fix.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New(`admin: Addr is empty; set a host:port such as "127.0.0.1:7001"`))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("admin: Addr %q is not host:port (%v); set it like \"127.0.0.1:7001\"", c.Addr, err))
	}
	if c.Status == nil {
		errs = append(errs, errors.New("admin: Status is nil; pass the node's Status method"))
	}
	if c.Store == nil && c.CurrentStore == nil {
		errs = append(errs, errors.New("admin: Store is nil and so is CurrentStore; pass the node's storage (a replica's read view) or a function returning it"))
	}
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": c.ReadHeaderTimeout, "ReadTimeout": c.ReadTimeout,
		"WriteTimeout": c.WriteTimeout, "IdleTimeout": c.IdleTimeout,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("admin: %s is %v; use a positive duration or 0 for the default", name, d))
		}
	}
	return errors.Join(errs...)
}

// Server is a node's admin HTTP endpoint. Create it with Listen, run it with
// Serve and stop it with Shutdown.
type Server struct {
	cfg      Config
	ln       net.Listener
	srv      *http.Server
	stopping atomic.Bool
}

// Listen validates cfg and binds its address, so a busy port fails here,
// before the node starts anything else.
func Listen(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, ln: ln}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          zap.NewStdLog(cfg.Logger.Named("http")),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves requests until Shutdown; it then returns nil.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("admin: serve: %w", err)
}

// Shutdown makes /healthz report ErrShuttingDown, stops accepting
// connections and waits, bounded by ctx, for requests in progress.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin: shutdown: %w", err)
	}
	return nil
}

// Handler returns the server's routes, for tests that drive it with
// net/http/httptest.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", s.handleStatus)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /chain", s.handleChain)
	mux.HandleFunc("GET /chain/before", s.handleChainBefore)
	mux.HandleFunc("GET /chain/after", s.handleChainAfter)
	mux.HandleFunc("GET /txn", s.handleTxn)
	mux.HandleFunc("GET /digest", s.handleDigest)
	mux.HandleFunc("GET /objects", s.handleObjects)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(s.cfg.Logger.Named("metrics")),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.controlRoutes(mux)
	for pattern, h := range s.cfg.Handlers {
		mux.Handle(pattern, h)
	}
	return mux
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, withAdmin(s.cfg.Status(), s.ln.Addr().String()))
}

// withAdmin adds the admin address to a status that encodes as a JSON
// object without an "admin" field, so a tool that found the node by one
// address learns the one it serves on; anything else is left as it is.
func withAdmin(status any, addr string) any {
	b, err := json.Marshal(status)
	if err != nil {
		return status // WriteJSON reports it
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(b, &fields) != nil || fields == nil {
		return status
	}
	if _, ok := fields["admin"]; !ok {
		fields["admin"], _ = json.Marshal(addr)
	}
	return fields
}

func (s *Server) health() error {
	if s.stopping.Load() {
		return ErrShuttingDown
	}
	if s.cfg.Health == nil {
		return nil
	}
	return s.cfg.Health()
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.health(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// ChainResponse is the JSON body of /chain.
type ChainResponse struct {
	TID   string `json:"tid"`
	Chain string `json:"chain"`
}

func (s *Server) handleChain(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var tid storage.TID
	if q := r.URL.Query().Get("tid"); q != "" {
		t, err := storage.ParseTID(q)
		if err != nil {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("tid %q: %v; give 16 hex digits", q, err))
			return
		}
		tid = t
	} else {
		t, err := s.store().LastTransaction(ctx)
		if err != nil {
			s.internalError(w, "last transaction", err)
			return
		}
		tid = t
	}
	chain, err := s.store().Chain(ctx, tid)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		WriteError(w, http.StatusNotFound, fmt.Errorf("this node has no transaction %s", tid))
		return
	case err != nil:
		s.internalError(w, "chain", err)
		return
	}
	WriteJSON(w, http.StatusOK, ChainResponse{TID: tid.String(), Chain: chain.String()})
}

// store returns the store the data endpoints read.
func (s *Server) store() storage.Storage {
	if s.cfg.CurrentStore != nil {
		return s.cfg.CurrentStore()
	}
	return s.cfg.Store
}

func (s *Server) internalError(w http.ResponseWriter, op string, err error) {
	s.cfg.Logger.Warn("admin request failed", zap.String("op", op), zap.Error(err))
	WriteError(w, http.StatusInternalServerError, fmt.Errorf("%s: %w", op, err))
}

// WriteJSON writes v as indented JSON with the given status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		WriteError(w, http.StatusInternalServerError, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// WriteError writes {"error": err} with the given status code.
func WriteError(w http.ResponseWriter, code int, err error) {
	body, _ := json.Marshal(map[string]string{"error": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}
