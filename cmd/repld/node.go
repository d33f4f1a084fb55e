package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage/badgerstore"
)

// shutdownTimeout bounds how long the admin server waits for requests in
// progress when the node stops.
const shutdownTimeout = 10 * time.Second

// nodeOptions are the flags the primary and the replica share.
type nodeOptions struct {
	name    string
	data    string
	listen  string
	admin   string
	group   string
	tlsCert string
	tlsKey  string
	tlsCA   string
	// failureTimeout is how long a silent peer stays a member (gcs).
	failureTimeout time.Duration
	client         clientPort
	// local is the store the node opened last, for its metrics.
	local localStore
}

func (o *nodeOptions) addFlags(fs *pflag.FlagSet, listenUsage, listenDefault string) {
	fs.StringVar(&o.data, "data", "", "data directory (the store, and the node's state files); required")
	fs.StringVar(&o.listen, "listen", listenDefault, listenUsage)
	fs.StringVar(&o.admin, "admin", "", `admin HTTP address host:port (/status, /healthz, /metrics, /chain); required`)
	fs.StringVar(&o.group, "group", primary.DefaultGroup, "replication group name; the same on the primary and its replicas")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate of this node, for mutual TLS between nodes (with --tls-key and --tls-ca)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM bundle of the CA that signs every node's certificate")
	fs.DurationVar(&o.failureTimeout, "failure-timeout", gcs.DefaultFailureTimeout,
		fmt.Sprintf("how long a peer (the primary, a replica) may stay silent before it is taken for gone: shorter notices a lost node sooner, longer rides out pauses; at least %v, the same on every node", minFailureTimeout))
	o.client.addFlag(fs)
}

// markFileFlags makes shell completion offer files and directories where
// the flags want them.
func markFileFlags(cmd *cobra.Command) {
	_ = cmd.MarkFlagDirname("data")
	for _, f := range []string{"tls-cert", "tls-key", "tls-ca"} {
		_ = cmd.MarkFlagFilename(f, "pem", "crt", "key")
	}
}

// validate checks the shared flags once the environment and config file
// are applied (so cobra's required-flag check, which runs before, cannot).
func (o *nodeOptions) validate() error {
	var errs []error
	if o.name == "" {
		errs = append(errs, errors.New("--name is empty: give the node a name unique in its group (or set REPLD_NAME)"))
	}
	if o.data == "" {
		errs = append(errs, errors.New("--data is required: give a directory for the node's store (or set REPLD_DATA)"))
	}
	for flag, v := range map[string]string{"--admin": o.admin, "--listen": o.listen} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required: give a host:port such as 127.0.0.1:7001 (or set %s)", flag, envName(flag[2:])))
		} else if _, _, err := net.SplitHostPort(v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not host:port (%v); use e.g. 127.0.0.1:7001", flag, v, err))
		}
	}
	errs = append(errs, o.client.validate())
	if o.group == "" {
		errs = append(errs, fmt.Errorf("--group is empty: use the same name on every node, e.g. %s", primary.DefaultGroup))
	}
	set := 0
	for _, v := range []string{o.tlsCert, o.tlsKey, o.tlsCA} {
		if v != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		errs = append(errs, errors.New("--tls-cert, --tls-key and --tls-ca go together: set all three for mutual TLS, or none for plain TCP"))
	}
	if o.failureTimeout < minFailureTimeout {
		errs = append(errs, fmt.Errorf("--failure-timeout %v is below %v (two heartbeats of the group layer): set at least %v, or leave the default %v", o.failureTimeout, minFailureTimeout, minFailureTimeout, gcs.DefaultFailureTimeout))
	}
	return errors.Join(errs...)
}

// minFailureTimeout is the shortest --failure-timeout: gcs needs two
// heartbeat intervals of silence to tell a lost peer from a quiet one.
const minFailureTimeout = 2 * gcs.DefaultHeartbeatInterval

func (o *nodeOptions) tlsConfig() (*tcptransport.TLSConfig, error) {
	if o.tlsCert == "" {
		return nil, nil
	}
	t, err := tcptransport.LoadTLSConfig(o.tlsCert, o.tlsKey, o.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key/--tls-ca: %w", err)
	}
	return t, nil
}

// storeDir is where a node keeps its badger files inside --data; the
// node's own state files (epoch, registry, quarantine marker) sit beside it.
func storeDir(data string) string { return filepath.Join(data, "store") }

func openStore(ctx context.Context, data string, log *zap.Logger) (*badgerstore.Store, error) {
	s, err := badgerstore.Open(ctx, badgerstore.Config{Dir: storeDir(data), Logger: log.Named("store")})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", storeDir(data), err)
	}
	return s, nil
}

// newGCSNode starts a gcs node on a TCP listener (TLS when tlsCfg is set);
// a zero failureTimeout takes gcs's default.
func newGCSNode(name, listen string, tlsCfg *tcptransport.TLSConfig, failureTimeout time.Duration, log *zap.Logger) (*gcs.Node, error) {
	tcfg := tcptransport.DefaultConfig()
	tcfg.Address = listen
	tcfg.TLS = tlsCfg
	layer, err := tcptransport.Listen(tcfg)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", listen, err)
	}
	gcfg := gcs.DefaultConfig(name)
	gcfg.Logger = gcsLogger(log)
	if failureTimeout != 0 {
		gcfg.FailureTimeout = failureTimeout
	}
	node, err := gcs.NewNode(gcfg, layer)
	if err != nil {
		_ = layer.Close()
		return nil, fmt.Errorf("start gcs node %q: %w", name, err)
	}
	return node, nil
}

// newRegistry returns the Prometheus registry of one node: the node's
// counters read from its status at scrape time, plus the Go runtime and
// process collectors.
func newRegistry(read func() []admin.Sample) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		admin.NewCollector(read),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// serveUntilDone runs srv until ctx ends (a signal) or it fails, then
// shuts it down. The caller closes the node's other parts afterwards, so no
// request runs against a closing store.
func serveUntilDone(ctx context.Context, srv *admin.Server, log *zap.Logger) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	var err error
	select {
	case <-ctx.Done():
		log.Info("shutting down", zap.NamedError("cause", context.Cause(ctx)))
	case err = <-served:
		log.Error("admin server failed", zap.Error(err))
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.Warn("admin server shutdown", zap.Error(serr))
	}
	if err == nil {
		err = <-served
	}
	return err
}

// closeAll closes parts in order and joins their errors.
func closeAll(log *zap.Logger, parts ...namedCloser) error {
	var errs []error
	for _, p := range parts {
		if err := p.close(); err != nil {
			log.Warn("close failed", zap.String("part", p.name), zap.Error(err))
			errs = append(errs, fmt.Errorf("close %s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

type namedCloser struct {
	name  string
	close func() error
}
