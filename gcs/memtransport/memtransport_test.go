package memtransport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/repld/repld/gcs/memtransport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// streamLayer mirrors gcs.StreamLayer, which this package satisfies without
// importing gcs.
type streamLayer interface {
	net.Listener
	Dial(ctx context.Context, address string) (net.Conn, error)
}

var _ streamLayer = (*memtransport.Layer)(nil)

func newNetwork(t testing.TB, cfg memtransport.Config) *memtransport.Network {
	t.Helper()
	n, err := memtransport.NewNetwork(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func listen(t testing.TB, n *memtransport.Network, addr string) *memtransport.Layer {
	t.Helper()
	l, err := n.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// connect dials from a to b and returns both ends.
func connect(t *testing.T, a, b *memtransport.Layer) (dialed, accepted net.Conn) {
	t.Helper()
	dialed, err := a.Dial(t.Context(), b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err = b.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dialed.Close(); _ = accepted.Close() })
	return dialed, accepted
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func write(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (memtransport.Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if err := memtransport.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		cfg  memtransport.Config
		want string
	}{
		{memtransport.Config{BufferSize: -1}, "Config.BufferSize is -1"},
		{memtransport.Config{AcceptBacklog: -5}, "Config.AcceptBacklog is -5"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "0 for the default") {
			t.Errorf("Validate(%+v) = %v, want it to name %q and the fix", tc.cfg, err, tc.want)
		}
		if _, err := memtransport.NewNetwork(tc.cfg); err == nil {
			t.Errorf("NewNetwork(%+v) accepted an invalid config", tc.cfg)
		}
	}
}

func TestEchoRoundTrip(t *testing.T) {
	n := newNetwork(t, memtransport.Config{})
	a, b := listen(t, n, "a"), listen(t, n, "b")
	done := make(chan error, 1)
	go func() {
		c, err := b.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		done <- err
	}()
	c, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.LocalAddr().String(), "a"; got != want {
		t.Errorf("LocalAddr = %q, want %q", got, want)
	}
	if got := c.RemoteAddr(); got.String() != "b" || got.Network() != "mem" {
		t.Errorf("RemoteAddr = %v/%v, want mem/b", got.Network(), got)
	}
	for i := range 100 {
		msg := bytes.Repeat([]byte{byte(i)}, i+1)
		write(t, c, msg)
		if got := readN(t, c, len(msg)); !bytes.Equal(got, msg) {
			t.Fatalf("round %d: echoed %x, want %x", i, got, msg)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("echo server: %v", err)
	}
}

// TestLargeConcurrentTransfer pushes several MiB both ways at once through a
// small buffer, with uneven write and read sizes, under the race detector.
func TestLargeConcurrentTransfer(t *testing.T) {
	n := newNetwork(t, memtransport.Config{BufferSize: 4096})
	a, b := listen(t, n, "a"), listen(t, n, "b")
	x, y := connect(t, a, b)

	const size = 4 << 20
	payload := func(seed byte) []byte {
		p := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{seed}).Read(p)
		return p
	}
	toY, toX := payload(1), payload(2)
	send := func(c net.Conn, p []byte, seed uint64) error {
		r := rand.New(rand.NewPCG(seed, 0))
		for len(p) > 0 {
			k := min(len(p), 1+r.IntN(10000))
			if _, err := c.Write(p[:k]); err != nil {
				return err
			}
			p = p[k:]
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	got := make([][]byte, 2)
	for i, tc := range []struct {
		w, r net.Conn
		p    []byte
	}{{x, y, toY}, {y, x, toX}} {
		wg.Add(2)
		go func() { defer wg.Done(); errs <- send(tc.w, tc.p, uint64(i)) }()
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			_, err := io.ReadFull(tc.r, buf)
			got[i] = buf
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got[0], toY) || !bytes.Equal(got[1], toX) {
		t.Fatal("transferred bytes differ from the bytes sent")
	}
}

func TestDialErrors(t *testing.T) {
	n := newNetwork(t, memtransport.Config{})
	a := listen(t, n, "a")

	if _, err := n.Listen("a"); !errors.Is(err, memtransport.ErrAddrInUse) {
		t.Errorf("duplicate Listen: %v, want ErrAddrInUse", err)
	}
	if _, err := n.Listen(""); err == nil {
		t.Error("Listen(\"\") succeeded")
	}
	_, err := a.Dial(t.Context(), "nobody")
	if !errors.Is(err, memtransport.ErrRefused) {
		t.Errorf("dial unknown address: %v, want ErrRefused", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "dial" {
		t.Errorf("dial error %v is not a *net.OpError for dial", err)
	}
	listen(t, n, "b")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.Dial(ctx, "b"); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with canceled ctx: %v, want context.Canceled", err)
	}
	_ = a.Close()
	if _, err := a.Dial(t.Context(), "b"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dial from closed layer: %v, want net.ErrClosed", err)
	}
	// The address is free again once its layer closed.
	listen(t, n, "a")

	s := n.Stats()
	if s.Dials != 3 || s.DialErrors != 3 || s.Opened != 0 {
		t.Errorf("Stats = %+v, want 3 dials, 3 errors, 0 opened", s)
	}
}

func TestAcceptUnblocksOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{})
		l := listen(t, n, "a")
		errc := make(chan error, 1)
		go func() {
			_, err := l.Accept()
			errc <- err
		}()
		synctest.Wait()
		_ = l.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	})
}

func TestBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{AcceptBacklog: 1})
		a, b := listen(t, n, "a"), listen(t, n, "b")
		first, err := a.Dial(t.Context(), "b")
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()

		// The backlog is full: the next dial waits for Accept or its ctx.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := a.Dial(ctx, "b"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial into full backlog: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("dial gave up after %v, want 1s", d)
		}

		dialed := make(chan net.Conn, 1)
		go func() {
			c, err := a.Dial(t.Context(), "b")
			if err != nil {
				t.Error(err)
			}
			dialed <- c
		}()
		synctest.Wait()
		accepted, err := b.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer accepted.Close()
		c := <-dialed
		defer c.Close()

		// Closing the listener resets connections still in its backlog.
		_ = b.Close()
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, memtransport.ErrReset) {
			t.Fatalf("read on a connection never accepted: %v, want ErrReset", err)
		}
	})
}

func TestCloseSemantics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{})
		x, y := connect(t, listen(t, n, "a"), listen(t, n, "b"))

		write(t, x, []byte("last words"))
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		// The peer drains what was written, then sees EOF.
		if got := readN(t, y, 10); string(got) != "last words" {
			t.Fatalf("read %q", got)
		}
		if _, err := y.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after drain: %v, want io.EOF", err)
		}
		// Writing to a closed peer fails.
		if _, err := y.Write([]byte("x")); !errors.Is(err, memtransport.ErrPeerClosed) {
			t.Fatalf("write to closed peer: %v, want ErrPeerClosed", err)
		}
		// Operations on the closed end fail with net.ErrClosed.
		if _, err := x.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read on closed end: %v", err)
		}
		if _, err := x.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("write on closed end: %v", err)
		}
		if err := x.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
			t.Errorf("SetDeadline on closed end: %v", err)
		}
		if err := x.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("second Close: %v", err)
		}
		_ = y.Close()
		if s := n.Stats(); s.Open != 0 || s.Broken != 0 {
			t.Errorf("Stats after both ends closed = %+v, want nothing open or broken", s)
		}
	})
}

// TestCloseUnblocks checks that Close wakes a blocked Read and Write on the
// same end, and a Write blocked on a full buffer when the peer closes.
func TestCloseUnblocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{BufferSize: 8})
		a, b := listen(t, n, "a"), listen(t, n, "b")
		x, _ := connect(t, a, b)
		peer, y := connect(t, a, b)
		errs := make(chan error, 3)
		go func() { _, err := x.Read(make([]byte, 1)); errs <- err }()
		go func() { _, err := x.Write(make([]byte, 100)); errs <- err }()
		go func() { _, err := y.Write(make([]byte, 100)); errs <- err }()
		synctest.Wait()
		_ = x.Close()
		_ = peer.Close()
		for range 3 {
			if err := <-errs; !errors.Is(err, net.ErrClosed) && !errors.Is(err, memtransport.ErrPeerClosed) {
				t.Errorf("blocked call ended with %v, want net.ErrClosed or ErrPeerClosed", err)
			}
		}
	})
}

func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{BufferSize: 4})
		x, y := connect(t, listen(t, n, "a"), listen(t, n, "b"))

		// A read deadline fires at exactly the fake time.
		start := time.Now()
		if err := x.SetReadDeadline(start.Add(3 * time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err := x.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past deadline: %v, want a timeout wrapping os.ErrDeadlineExceeded", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("read deadline fired after %v, want 3s", d)
		}
		// A passed deadline fails even when data is ready; clearing it
		// makes the data readable.
		write(t, y, []byte("ab"))
		if _, err := x.Read(make([]byte, 2)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read with passed deadline: %v", err)
		}
		_ = x.SetReadDeadline(time.Time{})
		if got := readN(t, x, 2); string(got) != "ab" {
			t.Fatalf("read %q", got)
		}

		// Moving the deadline while a Read is blocked applies to that Read.
		_ = x.SetReadDeadline(time.Now().Add(time.Hour))
		errc := make(chan error, 1)
		start = time.Now()
		go func() { _, err := x.Read(make([]byte, 1)); errc <- err }()
		synctest.Wait()
		_ = x.SetReadDeadline(time.Now().Add(time.Minute))
		if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked read: %v", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Fatalf("moved deadline fired after %v, want 1m", d)
		}

		// A write blocked on a full buffer stops at its deadline and
		// reports the bytes that fitted.
		_ = y.SetWriteDeadline(time.Now().Add(time.Second))
		k, err := y.Write([]byte("0123456789"))
		if k != 4 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write into full buffer = %d, %v; want 4 and a timeout", k, err)
		}
		_ = x.SetReadDeadline(time.Time{})
		if got := readN(t, x, 4); string(got) != "0123" {
			t.Fatalf("read %q", got)
		}
	})
}

func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{})
		x, y := connect(t, listen(t, n, "a"), listen(t, n, "b"))
		if err := n.Delay("a", "b", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		write(t, x, []byte("slow"))
		if got := readN(t, y, 4); string(got) != "slow" {
			t.Fatalf("read %q", got)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Fatalf("delayed bytes readable after %v, want 50ms", d)
		}
		// The other direction is not delayed.
		start = time.Now()
		write(t, y, []byte("fast"))
		readN(t, x, 4)
		if d := time.Since(start); d != 0 {
			t.Fatalf("undelayed direction took %v", d)
		}
		// Lowering the delay never lets later bytes overtake earlier ones.
		start = time.Now()
		write(t, x, []byte("1"))
		_ = n.Delay("a", "b", 0)
		write(t, x, []byte("2"))
		if got := readN(t, y, 2); string(got) != "12" {
			t.Fatalf("read %q, want order kept", got)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Fatalf("read after %v, want 50ms", d)
		}
		if err := n.Delay("a", "b", -time.Second); err == nil {
			t.Fatal("negative delay accepted")
		}
	})
}

// brokenBoth asserts that both ends of a reset connection fail.
func brokenBoth(t *testing.T, x, y net.Conn) {
	t.Helper()
	for _, c := range []net.Conn{x, y} {
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, memtransport.ErrReset) {
			t.Errorf("read on %v end: %v, want ErrReset", c.LocalAddr(), err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, memtransport.ErrReset) {
			t.Errorf("write on %v end: %v, want ErrReset", c.LocalAddr(), err)
		}
	}
}

func TestPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{})
		a, b, c := listen(t, n, "a"), listen(t, n, "b"), listen(t, n, "c")
		x, y := connect(t, a, b)
		ax, cx := connect(t, a, c)

		// A reader blocked before the partition wakes with an error, and
		// bytes in flight are lost.
		write(t, y, []byte("lost"))
		_ = n.Delay("a", "b", time.Second)
		write(t, x, []byte("lost"))
		errc := make(chan error, 1)
		go func() { _, err := y.Read(make([]byte, 1)); errc <- err }()
		synctest.Wait()
		n.Partition("b", "a")
		if err := <-errc; !errors.Is(err, memtransport.ErrReset) {
			t.Fatalf("blocked read: %v, want ErrReset", err)
		}
		brokenBoth(t, x, y)
		for _, d := range []struct{ from *memtransport.Layer }{{a}, {b}} {
			to := "b"
			if d.from == b {
				to = "a"
			}
			if _, err := d.from.Dial(t.Context(), to); !errors.Is(err, memtransport.ErrUnreachable) {
				t.Errorf("dial across partition: %v, want ErrUnreachable", err)
			}
		}
		// Other links are untouched.
		write(t, ax, []byte("ok"))
		readN(t, cx, 2)

		n.Heal("a", "b")
		x, y = connect(t, b, a)
		write(t, x, []byte("healed"))
		readN(t, y, 6)

		s := n.Stats()
		if s.Broken != 1 || s.Opened != 3 || s.Open != 2 {
			t.Errorf("Stats = %+v, want 1 broken, 3 opened, 2 open", s)
		}
	})
}

func TestIsolate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{})
		a, b := listen(t, n, "a"), listen(t, n, "b")
		x, y := connect(t, a, b)
		n.Isolate("a")
		brokenBoth(t, x, y)
		// Isolation covers nodes that appear later.
		c := listen(t, n, "c")
		if _, err := c.Dial(t.Context(), "a"); !errors.Is(err, memtransport.ErrUnreachable) {
			t.Fatalf("dial to isolated node: %v", err)
		}
		connect(t, b, c)
		n.Heal("a", "b") // Heal does not lift isolation
		if _, err := b.Dial(t.Context(), "a"); !errors.Is(err, memtransport.ErrUnreachable) {
			t.Fatalf("dial after Heal: %v", err)
		}
		n.Rejoin("a")
		connect(t, b, a)

		n.Isolate("b")
		n.Partition("a", "c")
		_ = n.Delay("a", "c", time.Hour)
		n.HealAll()
		x, y = connect(t, a, c)
		connect(t, a, b)
		write(t, x, []byte("now"))
		if got := readN(t, y, 3); string(got) != "now" {
			t.Fatalf("read %q", got)
		}
	})
}

func TestCloseLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{})
		a, b, c := listen(t, n, "a"), listen(t, n, "b"), listen(t, n, "c")
		x1, y1 := connect(t, a, b)
		x2, y2 := connect(t, b, a)
		x3, y3 := connect(t, a, c)
		if got := n.CloseLinks("a", "b"); got != 2 {
			t.Fatalf("CloseLinks broke %d connections, want 2", got)
		}
		brokenBoth(t, x1, y1)
		brokenBoth(t, x2, y2)
		write(t, x3, []byte("c"))
		readN(t, y3, 1)
		// New dials work at once.
		x, y := connect(t, a, b)
		write(t, y, []byte("b"))
		readN(t, x, 1)
		if got := n.CloseLinks("a", "b"); got != 1 {
			t.Fatalf("second CloseLinks broke %d, want 1", got)
		}
	})
}

func TestDrop(t *testing.T) {
	n := newNetwork(t, memtransport.Config{})
	a, b := listen(t, n, "a"), listen(t, n, "b")
	x, y := connect(t, a, b)
	if err := n.SetDropProbability("a", "b", 1); err != nil {
		t.Fatal(err)
	}
	// The other direction is not affected.
	write(t, y, []byte("up"))
	readN(t, x, 2)
	if _, err := x.Write([]byte("gone")); !errors.Is(err, memtransport.ErrReset) {
		t.Fatalf("dropped write: %v, want ErrReset", err)
	}
	brokenBoth(t, x, y)
	if s := n.Stats(); s.Dropped != 1 || s.Broken != 1 {
		t.Fatalf("Stats = %+v, want 1 dropped and broken", s)
	}
	for _, p := range []float64{-0.1, 1.5} {
		if err := n.SetDropProbability("a", "b", p); err == nil {
			t.Errorf("drop probability %v accepted", p)
		}
	}
}

// TestDropDeterministic checks that the same seed gives the same drops, so
// a failing run can be replayed.
func TestDropDeterministic(t *testing.T) {
	run := func(seed uint64) []int {
		n := newNetwork(t, memtransport.Config{Seed: seed})
		a, b := listen(t, n, "a"), listen(t, n, "b")
		if err := n.SetDropProbability("a", "b", 0.2); err != nil {
			t.Fatal(err)
		}
		var writesPerConn []int
		for range 10 {
			x, _ := connect(t, a, b)
			k := 0
			for ; k < 1000; k++ {
				if _, err := x.Write([]byte("m")); err != nil {
					break
				}
			}
			writesPerConn = append(writesPerConn, k)
		}
		if got := n.Stats().Dropped; got != 10 {
			t.Fatalf("Dropped = %d, want 10", got)
		}
		return writesPerConn
	}
	first, again, other := run(7), run(7), run(8)
	if !slices.Equal(first, again) {
		t.Fatalf("same seed gave %v then %v", first, again)
	}
	if slices.Equal(first, other) {
		t.Fatalf("seeds 7 and 8 gave the same drops %v", first)
	}
}

func TestNetworkClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNetwork(t, memtransport.Config{})
		a, b := listen(t, n, "a"), listen(t, n, "b")
		x, y := connect(t, a, b)
		errc := make(chan error, 1)
		go func() { _, err := a.Accept(); errc <- err }()
		synctest.Wait()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after network Close: %v", err)
		}
		brokenBoth(t, x, y)
		if _, err := n.Listen("c"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Listen after Close: %v", err)
		}
		if _, err := b.Dial(t.Context(), "a"); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Dial after Close: %v", err)
		}
	})
}

// BenchmarkThroughput streams writes of one size through a connection to a
// reader that discards them. "pipe" is net.Pipe measured in the same run,
// the baseline for "mem": compare their MB/s as a ratio.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{100, 100 << 10} {
		for _, kind := range []string{"pipe", "mem"} {
			b.Run(kind+"/"+byteSize(size), func(b *testing.B) {
				var x, y net.Conn
				if kind == "pipe" {
					x, y = net.Pipe()
				} else {
					n := newNetwork(b, memtransport.Config{})
					a, l := listen(b, n, "a"), listen(b, n, "b")
					var err error
					if x, err = a.Dial(b.Context(), "b"); err != nil {
						b.Fatal(err)
					}
					if y, err = l.Accept(); err != nil {
						b.Fatal(err)
					}
				}
				done := make(chan struct{})
				go func() { defer close(done); _, _ = io.Copy(io.Discard, y) }()
				msg := make([]byte, size)
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := x.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				_ = x.Close()
				<-done
				_ = y.Close()
			})
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
