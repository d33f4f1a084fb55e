package fragment

import (
	"testing"
	"time"
)

// The benchmarks compare splitting and reassembling a 64 MiB payload with
// one memcpy of it, in the same run; on a noisy machine the ratio is what
// counts, and BenchmarkPaired measures it with each memcpy and each
// split+reassemble timed back to back:
//
//	go test -run='^$' -bench=. -count=5 ./fragment/

const benchSize = 64 << 20

// BenchmarkCopy is the baseline: one memcpy of the payload into a
// preallocated buffer.
func BenchmarkCopy(b *testing.B) {
	src := make([]byte, benchSize)
	dst := make([]byte, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		copy(dst, src)
	}
}

// BenchmarkSplitReassemble allocates every reassembled message, as a caller
// that keeps its messages does; the fresh 64 MiB (zeroing, page faults,
// garbage collection) costs more than the copy into it.
func BenchmarkSplitReassemble(b *testing.B) {
	p := newBenchPipe(b)
	r := mustReassembler(b, DefaultConfig())
	b.SetBytes(benchSize)
	for b.Loop() {
		p.run(b, r, false)
	}
}

// BenchmarkSplitReassembleRecycle hands every message back with Recycle, as
// a caller that is done with a message once it is applied can.
func BenchmarkSplitReassembleRecycle(b *testing.B) {
	p := newBenchPipe(b)
	r := mustReassembler(b, DefaultConfig())
	b.SetBytes(benchSize)
	for b.Loop() {
		p.run(b, r, true)
	}
}

// BenchmarkPaired times a memcpy and a split+reassemble alternately and
// reports their throughput ratios (split+reassemble / memcpy), with and
// without Recycle, as the metrics fresh/copy and recycle/copy.
func BenchmarkPaired(b *testing.B) {
	p := newBenchPipe(b)
	fresh, recycling := mustReassembler(b, DefaultConfig()), mustReassembler(b, DefaultConfig())
	dst := make([]byte, benchSize)
	var copyTime, freshTime, recycleTime time.Duration
	timed := func(d *time.Duration, f func()) {
		start := time.Now()
		f()
		*d += time.Since(start)
	}
	b.SetBytes(3 * benchSize)
	for b.Loop() {
		timed(&copyTime, func() { copy(dst, p.payload) })
		timed(&freshTime, func() { p.run(b, fresh, false) })
		timed(&copyTime, func() { copy(dst, p.payload) })
		timed(&recycleTime, func() { p.run(b, recycling, true) })
	}
	b.ReportMetric(float64(copyTime)/2/float64(freshTime), "fresh/copy")
	b.ReportMetric(float64(copyTime)/2/float64(recycleTime), "recycle/copy")
}

// benchPipe is a payload, its sender and the fragments a receiver gets.
type benchPipe struct {
	payload  []byte
	s        Splitter
	received [][]byte
}

func newBenchPipe(b *testing.B) *benchPipe {
	p := &benchPipe{payload: make([]byte, benchSize)}
	for i := range p.payload {
		p.payload[i] = byte(i)
	}
	p.s = mustSplitter(b, DefaultConfig())
	// What the receiver's transport delivers: each fragment in its own
	// buffer. Producing them is the transport's cost, not measured here.
	fs, err := p.s.Split(p.payload)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range fs.All() {
		p.received = append(p.received, f.AppendTo(nil))
	}
	return p
}

// run splits the payload and reassembles the received fragments with r,
// handing the message back to r if recycle is set.
func (p *benchPipe) run(b *testing.B, r *Reassembler, recycle bool) {
	fs, err := p.s.Split(p.payload)
	if err != nil {
		b.Fatal(err)
	}
	for i, f := range fs.All() {
		if f.Header != [HeaderSize]byte(p.received[i]) {
			b.Fatalf("fragment %d: header %x, received %x", i, f.Header, p.received[i][:HeaderSize])
		}
		msg, done, err := r.Add(p.received[i])
		if err != nil {
			b.Fatal(err)
		}
		if done {
			if len(msg) != len(p.payload) {
				b.Fatalf("message of %d bytes, want %d", len(msg), len(p.payload))
			}
			if recycle {
				r.Recycle(msg)
			}
		}
	}
}
