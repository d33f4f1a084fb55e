package clientproto_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/internal/clientproto"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

func codec(t testing.TB, cfg wire.Config) *wire.Codec {
	t.Helper()
	c, err := wire.NewCodec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// frame returns m as one frame.
func frame(t testing.TB, c *wire.Codec, m wire.Message) []byte {
	t.Helper()
	head, payload, err := clientproto.AppendFrame(c, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return append(head, payload...)
}

func TestReadFrameIsStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, io.EOF},
		{"empty frame", []byte{0, 0, 0, 0}, clientproto.ErrFrame},
		{"short header", []byte{0, 0}, clientproto.ErrFrame},
		{"over the limit", []byte{0, 0, 1, 1}, clientproto.ErrFrame},
		{"truncated body", []byte{0, 0, 0, 5, 1, 2}, clientproto.ErrFrame},
	} {
		_, err := clientproto.ReadFrame(bytes.NewReader(tc.in), 256)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: ReadFrame = %v; want %v", tc.name, err, tc.want)
		}
	}
	b, err := clientproto.ReadFrame(bytes.NewReader([]byte{0, 0, 0, 2, 7, 8, 9}), 256)
	if err != nil || !bytes.Equal(b, []byte{7, 8}) {
		t.Fatalf("ReadFrame = %x, %v", b, err)
	}
}

// TestWriterCoalescesAndKeepsOrder sends many frames, some with payloads,
// and reads them back in order.
func TestWriterCoalescesAndKeepsOrder(t *testing.T) {
	c := codec(t, wire.Config{})
	client, server := net.Pipe()
	w := clientproto.NewWriter(client, c, 1<<30, 0)
	const n = 200
	go func() {
		for i := range n {
			m := wire.Message(&wire.CNum{ID: uint64(i), Value: uint64(i)})
			if i%3 == 0 {
				m = &wire.CData{ID: uint64(i), Data: bytes.Repeat([]byte{byte(i)}, i)}
			}
			if err := w.Send(m); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range n {
		b, err := clientproto.ReadFrame(server, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *wire.CNum:
			if m.ID != uint64(i) || i%3 == 0 {
				t.Fatalf("frame %d is %+v", i, m)
			}
		case *wire.CData:
			if m.ID != uint64(i) || len(m.Data) != i {
				t.Fatalf("frame %d is %+v", i, m)
			}
		}
	}
	_ = client.Close()
	w.Close()
	_ = server.Close()
}

// recorder is a connection that keeps what is written to it.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}

func (r *recorder) Close() error { return nil }

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// TestHoldWaitsForTheNextSend: a held message is not written on its own,
// and goes out before the message sent next.
func TestHoldWaitsForTheNextSend(t *testing.T) {
	c := codec(t, wire.Config{})
	var r recorder
	w := clientproto.NewWriter(&r, c, 1<<20, 0)
	defer w.Close()
	held := &wire.CInvalidate{TID: 7, OIDs: make([]byte, 8)}
	if err := w.Hold(held); err != nil {
		t.Fatal(err)
	}
	if b := r.bytes(); len(b) != 0 {
		t.Fatalf("Hold wrote %d bytes; want none before the next send", len(b))
	}
	answer := &wire.CCommit{ID: 1, TID: 7}
	if err := w.SendWait(context.Background(), answer); err != nil {
		t.Fatal(err)
	}
	want := append(frame(t, c, held), frame(t, c, answer)...)
	if b := r.bytes(); !bytes.Equal(b, want) {
		t.Fatalf("wrote %x; want the held frame, then the answer: %x", b, want)
	}
}

// TestFrameEncodedOnceForManyWriters queues one encoded frame on two
// Writers, held on one and sent on the other: each writes the same bytes
// as if it had encoded the message itself, and SendSoon writes without
// another send.
func TestFrameEncodedOnceForManyWriters(t *testing.T) {
	c := codec(t, wire.Config{})
	inv := &wire.CInvalidate{TID: 9, OIDs: []byte{0, 0, 0, 0, 0, 0, 0, 3}}
	f, err := clientproto.EncodeFrame(c, inv)
	if err != nil {
		t.Fatal(err)
	}
	var held, sent recorder
	wh := clientproto.NewWriter(&held, c, 1<<20, 0)
	ws := clientproto.NewWriter(&sent, c, 1<<20, 0)
	if err := wh.HoldFrame(f); err != nil {
		t.Fatal(err)
	}
	if err := ws.SendFrame(f); err != nil {
		t.Fatal(err)
	}
	answer := &wire.CCommit{ID: 1, TID: 9}
	if err := wh.SendSoon(context.Background(), answer); err != nil {
		t.Fatal(err)
	}
	// Close writes what is queued before it returns.
	wh.Close()
	ws.Close()
	if want := append(frame(t, c, inv), frame(t, c, answer)...); !bytes.Equal(held.bytes(), want) {
		t.Fatalf("held, then answered: wrote %x; want %x", held.bytes(), want)
	}
	if want := frame(t, c, inv); !bytes.Equal(sent.bytes(), want) {
		t.Fatalf("sent: wrote %x; want %x", sent.bytes(), want)
	}
}

// TestSendSoonWritesByItself: what SendSoon queues goes out without
// another send or Close.
func TestSendSoonWritesByItself(t *testing.T) {
	c := codec(t, wire.Config{})
	client, server := net.Pipe()
	w := clientproto.NewWriter(client, c, 1<<20, 0)
	if err := w.SendSoon(context.Background(), &wire.COK{ID: 5}); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := clientproto.ReadFrame(server, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c.Unmarshal(b); err != nil || m.(*wire.COK).ID != 5 {
		t.Fatalf("read %v, %v; want the COK", m, err)
	}
	_ = client.Close()
	w.Close()
	_ = server.Close()
}

func TestWriterQueueBound(t *testing.T) {
	c := codec(t, wire.Config{})
	client, server := net.Pipe() // nobody reads server: writes block
	defer server.Close()
	w := clientproto.NewWriter(client, c, 100, 0)
	var err error
	for range 1000 {
		if err = w.Send(&wire.CData{ID: 1, Data: make([]byte, 40)}); err != nil {
			break
		}
	}
	if !errors.Is(err, clientproto.ErrQueueFull) {
		t.Fatalf("Send to a peer that never reads: %v; want ErrQueueFull", err)
	}
	_ = client.Close()
	w.Close()
	if err := w.Send(&wire.COK{ID: 1}); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}

// TestSendWaitBackpressure fills the queue of a peer that reads slowly:
// SendWait waits for room instead of failing, and gives up with ctx.
func TestSendWaitBackpressure(t *testing.T) {
	c := codec(t, wire.Config{})
	client, server := net.Pipe()
	w := clientproto.NewWriter(client, c, 100, 0)
	const n = 50
	got := make(chan int, 1)
	go func() {
		count := 0
		for range n {
			if _, err := clientproto.ReadFrame(server, 1<<20); err != nil {
				break
			}
			count++
		}
		got <- count
	}()
	for i := range n {
		if err := w.SendWait(context.Background(), &wire.CData{ID: uint64(i), Data: make([]byte, 40)}); err != nil {
			t.Fatalf("SendWait %d: %v", i, err)
		}
	}
	if count := <-got; count != n {
		t.Fatalf("peer read %d frames, want %d", count, n)
	}
	// Nobody reads now: one sender blocks writing, the other fills the
	// queue and waits for room until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				if err := w.SendWait(ctx, &wire.CData{ID: 1, Data: make([]byte, 40)}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("SendWait with a cancelled context: %v", err)
	}
	_ = client.Close() // ends the blocked write
	if err := <-errc; err == nil {
		t.Fatal("the blocked writer saw no error")
	}
	w.Close()
	_ = server.Close()
}

// TestWriteTimeout: a peer that stops reading fails the write after the
// write timeout, and the connection is closed.
func TestWriteTimeout(t *testing.T) {
	c := codec(t, wire.Config{})
	client, server := net.Pipe()
	defer server.Close()
	w := clientproto.NewWriter(client, c, 1<<20, time.Millisecond)
	if err := w.SendWait(context.Background(), &wire.COK{ID: 1}); err != nil {
		t.Fatal(err)
	}
	if err := w.SendWait(context.Background(), &wire.COK{ID: 2}); !errors.Is(err, clientproto.ErrWriterClosed) {
		t.Fatalf("SendWait after a timed-out write: %v; want ErrWriterClosed", err)
	}
	w.Close()
}

func TestErrorsRoundTrip(t *testing.T) {
	conflict := &storage.ConflictError{OID: 3, Expected: 4, Actual: 5}
	for _, err := range []error{
		conflict, storage.ErrNotFound, storage.ErrReadOnly, storage.ErrTIDOrder, storage.ErrChainMismatch,
		storage.ErrTooLarge, storage.ErrTxnState, storage.ErrClosed, clientproto.ErrBehind,
	} {
		got := clientproto.Error(clientproto.ErrorMessage(7, errors.Join(errors.New("context"), err)))
		if !errors.Is(got, err) && !errors.Is(got, storage.ErrConflict) {
			t.Errorf("%v came back as %v", err, got)
		}
	}
	var ce *storage.ConflictError
	if got := clientproto.Error(clientproto.ErrorMessage(7, conflict)); !errors.As(got, &ce) || *ce != *conflict {
		t.Errorf("conflict came back as %v", got)
	}
	other := clientproto.Error(&wire.CError{Code: 999, Text: "from the future"})
	if errors.Is(other, storage.ErrNotFound) || other.Error() == "" {
		t.Errorf("unknown code came back as %v", other)
	}
}

// fuzzSeeds are frame streams: valid frames of each client kind, and broken
// ones.
func fuzzSeeds(t testing.TB, c *wire.Codec) [][]byte {
	msgs := []wire.Message{
		&wire.CLoad{ID: 1, OID: 2, AtLeast: 3}, &wire.CStore{ID: 0, Txn: 1, OID: 2, Serial: 3, Data: []byte("data")},
		&wire.CError{ID: 1, Code: wire.ClientErrConflict, OID: 1, Expected: 2, Actual: 3, Text: "x"},
		&wire.CInvalidate{TID: 9, OIDs: make([]byte, 16)}, &wire.CTxn{ID: 4, TID: 5, User: []byte("u")},
		&wire.CRecord{ID: 4, OID: 1, Data: []byte("r")}, &wire.CNum{ID: 4, Value: 6},
	}
	var all []byte
	var seeds [][]byte
	for _, m := range msgs {
		f := frame(t, c, m)
		seeds = append(seeds, f)
		all = append(all, f...)
	}
	huge := binary.BigEndian.AppendUint32(nil, 1<<31)
	return append(seeds, all, all[:len(all)-3], []byte{0, 0, 0, 0}, huge, append([]byte{0, 0, 0, 1}, 0x80))
}

// FuzzFrames reads a stream of frames and decodes each: nothing panics,
// every error wraps a known sentinel, and every decoded message
// re-encodes to its frame.
func FuzzFrames(f *testing.F) {
	c := codec(f, wire.Config{MaxMessageLen: 4096, MaxDataLen: 2048, MaxByteStringLen: 256, MaxTextLen: 64})
	for _, s := range fuzzSeeds(f, c) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for range 1000 {
			b, err := clientproto.ReadFrame(r, c.Config().MaxMessageLen)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, clientproto.ErrFrame) {
					t.Fatalf("ReadFrame error wraps no sentinel: %v", err)
				}
				return
			}
			m, err := c.Unmarshal(b)
			if err != nil {
				if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrUnknownMethod) && !errors.Is(err, wire.ErrTooLarge) {
					t.Fatalf("Unmarshal error wraps no sentinel: %v", err)
				}
				continue
			}
			again := frame(t, c, m)
			if !bytes.Equal(again[clientproto.HeaderLen:], b) {
				t.Fatalf("%s re-encodes to %x, not %x", m.Method(), again, b)
			}
		}
	})
}

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz/FuzzFrames")

// TestFuzzCorpus checks that the seed corpus, which plain go test replays,
// holds every seed; -update rewrites it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFrames")
	seeds := fuzzSeeds(t, codec(t, wire.Config{MaxMessageLen: 4096, MaxDataLen: 2048, MaxByteStringLen: 256, MaxTextLen: 64}))
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "seed-*"))
	if err != nil || len(files) != len(seeds) {
		t.Fatalf("%d seed files in %s for %d seeds, %v: run go test -run TestFuzzCorpus -update", len(files), dir, len(seeds), err)
	}
}
