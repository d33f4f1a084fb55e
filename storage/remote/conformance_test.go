package remote_test

import (
	"context"
	"testing"

	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
	"github.com/repld/repld/storage/storagetest"
)

// TestConformance runs the storage suite through a client of a primary
// with two replicas, reads going to the replicas.
func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		Open: func(t *testing.T) storage.Storage {
			_, paddr, raddrs := clusterWithServers(t, 2)
			return open(t, remote.Config{Primary: []string{paddr}, Replicas: raddrs})
		},
	})
}

// TestConformanceNoReplicas runs the suite through a client of a primary
// serving a memstore, with no cache.
func TestConformanceNoReplicas(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		Open: func(t *testing.T) storage.Storage {
			s := serve(t, "", clientserver.Config{Store: memStore(t)})
			return open(t, remote.Config{Primary: []string{s.Addr().String()}, CacheObjects: -1})
		},
	})
}

// TestConformanceReadOnly checks a client of a replica's client port.
func TestConformanceReadOnly(t *testing.T) {
	storagetest.RunReadOnly(t, storagetest.ReadOnlyHarness{
		Open: func(t *testing.T) (storage.Storage, storage.Storage, func(context.Context, storage.TID) error) {
			c, _, raddrs := clusterWithServers(t, 1)
			r := open(t, remote.Config{Primary: raddrs, AnyRole: true})
			return c.Primary, r, c.Replica("r1").R.WaitFor
		},
	})
}
