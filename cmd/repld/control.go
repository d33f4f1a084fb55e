package main

import (
	"context"
	"errors"
	"os"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/node"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
)

// openNode starts the node in role on --data with its gcs node on
// --listen, the roles' settings taken from n. The node switches roles on
// the operator's control requests (promote, follow), so the caller reads
// its status and store through it, never through a role.
func openNode(ctx context.Context, o *nodeOptions, role node.Role, n node.Config, log *zap.Logger) (*node.Node, *gcs.Node, error) {
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	g, err := newGCSNode(o.name, o.listen, tlsCfg, o.failureTimeout, log)
	if err != nil {
		return nil, nil, err
	}
	n.Name, n.DataDir, n.GCS, n.Logger = o.name, o.data, g, log
	n.OpenStore = func(ctx context.Context) (storage.Storage, error) {
		s, err := openStore(ctx, o.data, log)
		if err == nil {
			o.local.set(s)
		}
		return o.client.announce(s, err)
	}
	n.RemoveStore = func() error { return os.RemoveAll(storeDir(o.data)) }
	n.Primary.Group, n.Replica.Group = o.group, o.group
	nd, err := node.Open(ctx, n, role)
	if err != nil {
		return nil, nil, errors.Join(err, g.Close())
	}
	return nd, g, nil
}

// nodeAdmin is the admin configuration of a node in either role, with the
// control endpoints.
func nodeAdmin(o *nodeOptions, n *node.Node, log *zap.Logger) admin.Config {
	return admin.Config{
		Addr:         o.admin,
		Status:       n.Status,
		Health:       n.Health,
		CurrentStore: n.Store,
		Control:      n,
		Gatherer:     newRegistry(func() []admin.Sample { return nodeSamples(n.Status(), o.local.get()) }),
		Logger:       log.Named("admin"),
	}
}

// nodeSamples are the metrics of the node's current role, whose status is
// st, and of its local store.
func nodeSamples(st any, local storage.Storage) []admin.Sample {
	switch st := st.(type) {
	case primary.Status:
		return append(primarySamples(st), storeSamples(local)...)
	case node.ReplicaStatus:
		return append(replicaSamples(st.Status), storeSamples(local)...)
	}
	return nil
}

// stopNode closes the node (its role and store) and then its gcs node.
func stopNode(log *zap.Logger, n *node.Node, g *gcs.Node) error {
	return closeAll(log, namedCloser{"node", n.Close}, namedCloser{"gcs node", g.Close})
}
