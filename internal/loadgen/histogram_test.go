package loadgen

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var a, b Histogram
	// 1 µs to 100 ms in 1 µs steps, split over two histograms.
	for i := 1; i <= 100000; i++ {
		h := &a
		if i%2 == 0 {
			h = &b
		}
		h.Record(time.Duration(i) * time.Microsecond)
	}
	a.Merge(&b)
	s := a.Summary()
	for _, tc := range []struct {
		name      string
		got, want time.Duration
	}{
		{"p50", s.P50, 50 * time.Millisecond},
		{"p99", s.P99, 99 * time.Millisecond},
		{"p999", s.P999, 99900 * time.Microsecond},
		{"mean", s.Mean, 50000500 * time.Nanosecond},
	} {
		if rel := math.Abs(float64(tc.got-tc.want)) / float64(tc.want); rel > 0.02 {
			t.Errorf("%s = %v, want %v within 2%%", tc.name, tc.got, tc.want)
		}
	}
	if s.Max != 100*time.Millisecond || s.Count != 100000 || a.Quantile(1) != s.Max {
		t.Errorf("max %v count %d, want 100ms and 100000", s.Max, s.Count)
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Summary() != (Latency{}) {
		t.Fatal("empty histogram is not all zero")
	}
	h.Record(-time.Second)
	h.Record(0)
	h.Record(time.Duration(math.MaxInt64))
	if h.Count() != 3 || h.Quantile(0) != 0 || h.Quantile(0.99) < time.Duration(math.MaxInt64/100*98) || h.Quantile(1) != time.Duration(math.MaxInt64) {
		t.Fatalf("count %d q0 %v q99 %v", h.Count(), h.Quantile(0), h.Quantile(0.99))
	}
	// Every bucket's midpoint falls back into that bucket.
	for i := range numBuckets {
		if got := bucketOf(bucketMid(i)); got != i {
			t.Fatalf("bucketOf(bucketMid(%d)) = %d", i, got)
		}
	}
}
