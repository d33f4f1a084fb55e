package fragment

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// goldenErrors maps the error names of the reject vectors to sentinels.
var goldenErrors = map[string]error{
	"truncated":    ErrTruncated,
	"version":      ErrVersion,
	"header":       ErrHeader,
	"sequence":     ErrSequence,
	"body-size":    ErrBodySize,
	"message-size": ErrMessageSize,
}

// goldenCase is one vector file of testdata/fragment (format in its README).
type goldenCase struct {
	cfg       Config
	payload   []byte // nil unless the file has a payload line
	hasPay    bool
	fragments [][]byte
	err       string
}

func readGolden(t *testing.T, path string) goldenCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c goldenCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := func(err error) { t.Fatalf("%s:%d: %q: %v", path, line, sc.Text(), err) }
		hexArgs := func() []byte {
			b, err := hex.DecodeString(strings.Join(fields[1:], ""))
			if err != nil {
				bad(err)
			}
			return b
		}
		intArg := func() int {
			if len(fields) != 2 {
				bad(errors.New("want one number"))
			}
			n, err := strconv.Atoi(fields[1])
			if err != nil {
				bad(err)
			}
			return n
		}
		switch fields[0] {
		case "max-fragment":
			c.cfg.MaxFragment = intArg()
		case "max-message":
			c.cfg.MaxMessage = intArg()
		case "payload":
			c.payload, c.hasPay = hexArgs(), true
		case "fragment":
			c.fragments = append(c.fragments, hexArgs())
		case "error":
			if len(fields) != 2 || goldenErrors[fields[1]] == nil {
				bad(errors.New("unknown error name"))
			}
			c.err = fields[1]
		default:
			bad(errors.New("unknown directive"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if c.hasPay == (c.err != "") || len(c.fragments) == 0 {
		t.Fatalf("%s: want a payload or an error (not both) and at least one fragment", path)
	}
	return c
}

func TestGoldenVectors(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "fragment", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d golden vectors, expected at least 20", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			c := readGolden(t, path)
			r := mustReassembler(t, c.cfg)
			if !c.hasPay {
				last := len(c.fragments) - 1
				for i, f := range c.fragments[:last] {
					if _, done, err := r.Add(f); err != nil || done {
						t.Fatalf("fragment %d: done %v, %v; want accepted", i, done, err)
					}
				}
				if _, _, err := r.Add(c.fragments[last]); !errors.Is(err, goldenErrors[c.err]) {
					t.Fatalf("last fragment: %v, want %s", err, c.err)
				}
				return
			}
			// Sender: splitting gives exactly the vector's fragments.
			fs, err := mustSplitter(t, c.cfg).Split(c.payload)
			if err != nil {
				t.Fatal(err)
			}
			if fs.Len() != len(c.fragments) {
				t.Fatalf("%d fragments, the vector has %d", fs.Len(), len(c.fragments))
			}
			for i, f := range fs.All() {
				if got := f.AppendTo(nil); !bytes.Equal(got, c.fragments[i]) {
					t.Fatalf("fragment %d = %x, want %x", i, got, c.fragments[i])
				}
			}
			// Receiver: the vector's fragments give the payload.
			for i, f := range c.fragments {
				msg, done, err := r.Add(f)
				if err != nil || done != (i == len(c.fragments)-1) {
					t.Fatalf("fragment %d: done %v, %v", i, done, err)
				}
				if done && !bytes.Equal(msg, c.payload) {
					t.Fatalf("message %x, want %x", msg, c.payload)
				}
			}
		})
	}
}
