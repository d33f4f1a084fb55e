package admin

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

// BenchmarkDigest measures /digest over every object of a badgerstore of
// n 100-byte objects split into 4096 ranges (the first level of a verify),
// against listing the same objects with Objects in the same run: compare
// the ns/op of digest/n=N with list/n=N. n=1000000 is the one-node cost of
// a verify's top level on a million objects.
func BenchmarkDigest(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			store := filledStore(b, n)
			b.Run("list", func(b *testing.B) {
				b.SetBytes(int64(n) * 100)
				for b.Loop() {
					for _, err := range storage.ListObjects(b.Context(), store, 0, math.MaxUint64, math.MaxUint64) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			b.Run("digest", func(b *testing.B) {
				srv, err := Listen(Config{Addr: "127.0.0.1:0", Status: func() any { return nil }, Store: store, Gatherer: prometheus.NewRegistry()})
				if err != nil {
					b.Fatal(err)
				}
				defer srv.ln.Close()
				h := srv.Handler()
				b.SetBytes(int64(n) * 100)
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequestWithContext(b.Context(), "GET", "/digest?parts=4096", nil))
					if rec.Code != http.StatusOK {
						b.Fatalf("/digest = %d %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}

// filledStore returns a NoSync badgerstore of n 100-byte objects.
func filledStore(b *testing.B, n int) storage.Storage {
	b.Helper()
	ctx := context.Background()
	s, err := badgerstore.Open(ctx, badgerstore.Config{Dir: b.TempDir(), NoSync: true, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	const perTxn = 5000
	for first := 0; first < n; first += perTxn {
		txn, err := s.Begin(ctx, storage.TxnMeta{})
		if err != nil {
			b.Fatal(err)
		}
		for i := first; i < min(first+perTxn, n); i++ {
			data := make([]byte, 100)
			data[0], data[1], data[2] = byte(i), byte(i>>8), byte(i>>16)
			if err := txn.Store(ctx, storage.OID(i), 0, data); err != nil {
				b.Fatal(err)
			}
		}
		if err := txn.Vote(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := txn.Finish(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return s
}
