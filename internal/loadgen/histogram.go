package loadgen

import (
	"math/bits"
	"time"
)

// subBuckets is the number of buckets per power of two above the linear
// range: values are kept to within 1/64 (about 1.6%) of their size, in a
// fixed array, so recording never allocates and histograms merge by adding.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	// numBuckets covers every int64 nanosecond count.
	numBuckets = subBuckets + (64-subBits)*subBuckets
)

// Histogram records durations with a relative precision of about 1.6%. The
// zero value is empty and ready; it is not safe for concurrent use (give
// each client its own and Merge them).
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return subBuckets + shift*subBuckets + int(v>>shift) - subBuckets
}

// bucketMid returns a value in the middle of bucket i.
func bucketMid(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := (i - subBuckets) / subBuckets
	lo := uint64(subBuckets+(i-subBuckets)%subBuckets) << shift
	return lo + (uint64(1)<<shift)/2
}

// Record adds one duration; negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the value below which a fraction q (0 to 1) of the
// recorded values lie, or 0 for an empty histogram. Quantile(1) is the
// exact maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return min(time.Duration(bucketMid(i)), h.max)
		}
	}
	return h.max
}

// Latency is the summary of a Histogram that reports print.
type Latency struct {
	Count uint64        `json:"count"`
	Mean  time.Duration `json:"mean"`
	P50   time.Duration `json:"p50"`
	P99   time.Duration `json:"p99"`
	P999  time.Duration `json:"p999"`
	Max   time.Duration `json:"max"`
}

// Summary returns the count, mean, p50, p99, p999 and maximum.
func (h *Histogram) Summary() Latency {
	l := Latency{Count: h.n, P50: h.Quantile(0.5), P99: h.Quantile(0.99), P999: h.Quantile(0.999), Max: h.max}
	if h.n > 0 {
		l.Mean = h.sum / time.Duration(h.n)
	}
	return l
}
