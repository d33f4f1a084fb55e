package gcs

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repld/repld/gcs/tcptransport"
)

var benchSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"1KiB", 1 << 10}, {"10KiB", 10 << 10}, {"100KiB", 100 << 10}}

var benchReceivers = []int{1, 2, 4}

func tcpLayer(tb testing.TB) *tcptransport.Layer {
	cfg := tcptransport.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	l, err := tcptransport.Listen(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// BenchmarkMulticastTCP measures one coordinator multicasting to 1, 2 and 4
// members over loopback TCP. msgs/s counts messages sent per second until
// every member received them all; MB/s is per sender (multiply by the
// receivers for the bytes delivered). Compare with BenchmarkPlainTCP.
func BenchmarkMulticastTCP(b *testing.B) {
	for _, s := range benchSizes {
		for _, r := range benchReceivers {
			b.Run(fmt.Sprintf("size=%s/receivers=%d", s.name, r), func(b *testing.B) {
				benchMulticast(b, s.size, r, true)
			})
		}
	}
}

// BenchmarkMulticastTCPNoRelease is BenchmarkMulticastTCP with receivers
// that never call Event.Release: every message is read into fresh memory.
func BenchmarkMulticastTCPNoRelease(b *testing.B) {
	for _, s := range benchSizes[2:] {
		b.Run(fmt.Sprintf("size=%s/receivers=1", s.name), func(b *testing.B) {
			benchMulticast(b, s.size, 1, false)
		})
	}
}

func benchMulticast(b *testing.B, size, receivers int, release bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var nodes []*Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	newNode := func(name string) *Node {
		n, err := NewNode(DefaultConfig(name), tcpLayer(b))
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		return n
	}
	p := newNode("p")
	gp, err := p.Create(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	counts := make([]atomic.Int64, receivers)
	var evicted atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range receivers {
		g, err := newNode(fmt.Sprintf("r%d", i)).Join(ctx, "bench", p.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				ev, err := g.Receive(ctx)
				if err != nil {
					return
				}
				switch ev.Kind {
				case EventMessage:
					counts[i].Add(1)
					if release {
						ev.Release()
					}
				case EventNotice:
					evicted.Add(1)
				}
			}
		})
	}
	for len(gp.View().Members) < receivers+1 {
		time.Sleep(time.Millisecond)
	}
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var sent int64
	start := time.Now()
	for b.Loop() {
		if err := gp.Multicast(ctx, msg); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	for i := range counts {
		for counts[i].Load() < sent {
			time.Sleep(50 * time.Microsecond)
		}
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "msgs/s")
	if n := evicted.Load(); n > 0 {
		b.Fatalf("%d receivers were evicted while keeping up", n)
	}
}

// BenchmarkPlainTCP is the baseline: the same messages written with one
// Write per message and receiver, each with a 4-byte length prefix, over
// loopback TCP connections, read by one goroutine per receiver.
func BenchmarkPlainTCP(b *testing.B) {
	for _, s := range benchSizes {
		for _, r := range benchReceivers {
			b.Run(fmt.Sprintf("size=%s/receivers=%d", s.name, r), func(b *testing.B) {
				benchPlain(b, s.size, r)
			})
		}
	}
}

func benchPlain(b *testing.B, size, receivers int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	counts := make([]atomic.Int64, receivers)
	var wg sync.WaitGroup
	var conns []net.Conn
	for i := range receivers {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer s.Close()
			br := bufio.NewReaderSize(s, 64<<10)
			buf := make([]byte, size)
			var hdr [4]byte
			for {
				if _, err := io.ReadFull(br, hdr[:]); err != nil {
					return
				}
				if _, err := io.ReadFull(br, buf[:binary.BigEndian.Uint32(hdr[:])]); err != nil {
					return
				}
				counts[i].Add(1)
			}
		})
	}
	defer wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	msg := make([]byte, 4+size)
	binary.BigEndian.PutUint32(msg, uint32(size))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var sent int64
	start := time.Now()
	for b.Loop() {
		for _, c := range conns {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		sent++
	}
	for i := range counts {
		for counts[i].Load() < sent {
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkRoundTripTCP measures the latency of the group layer: the
// coordinator multicasts 100 bytes to one member, which answers with a
// unicast; one round trip per iteration, as a primary's finish and a
// replica's acknowledgement. Compare with BenchmarkRoundTripPlainTCP.
func BenchmarkRoundTripTCP(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := NewNode(DefaultConfig("p"), tcpLayer(b))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	r, err := NewNode(DefaultConfig("r"), tcpLayer(b))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	gp, err := p.Create(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	gr, err := r.Join(ctx, "bench", p.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		for {
			ev, err := gr.Receive(ctx)
			if err != nil {
				return
			}
			if ev.Kind == EventMessage {
				ev.Release()
				if err := gr.Send(ctx, gp.Self(), []byte("ack")); err != nil {
					return
				}
			}
		}
	})
	for len(gp.View().Members) < 2 {
		time.Sleep(time.Millisecond)
	}
	msg := make([]byte, 100)
	for b.Loop() {
		if err := gp.Multicast(ctx, msg); err != nil {
			b.Fatal(err)
		}
		for {
			ev, err := gp.Receive(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == EventMessage {
				ev.Release()
				break
			}
		}
	}
}

// BenchmarkRoundTripPlainTCP is the baseline of BenchmarkRoundTripTCP: 100
// bytes written on a loopback TCP connection and 3 bytes written back by
// a goroutine reading the other end.
func BenchmarkRoundTripPlainTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 100)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf[:3]); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	msg, ack := make([]byte, 100), make([]byte, 3)
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, ack); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	<-done
}
