package wire_test

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/repld/repld/wire"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/wire and the fuzz seed corpus from the samples")

const (
	goldenDir = "../testdata/wire"
	corpusDir = "testdata/fuzz/FuzzUnmarshal"
)

// renderGolden returns the golden file of s: comments describing the
// message, then its encoding in hex on one line.
func renderGolden(t *testing.T, s sample, enc []byte) string {
	t.Helper()
	diag, err := cbor.Diagnose(enc)
	if err != nil {
		t.Fatalf("%s: Diagnose: %v", s.name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# repld wire golden vector: %s\n", s.name)
	fmt.Fprintf(&b, "# %s\n", s.desc)
	fmt.Fprintf(&b, "# Go type %v, arguments in field order: %s\n", reflect.TypeOf(s.msg).Elem(), strings.Join(fieldNames(s.msg), ", "))
	fmt.Fprintf(&b, "# CBOR diagnostic notation (RFC 8949 section 8):\n#   %s\n", diag)
	fmt.Fprintf(&b, "# The line below is the deterministic encoding in hex; every implementation must produce it.\n")
	fmt.Fprintf(&b, "%s\n", hex.EncodeToString(enc))
	return b.String()
}

// fieldNames returns the names of the arguments of m's kind.
func fieldNames(m any) []string {
	t := reflect.TypeOf(m).Elem()
	var names []string
	for i := 1; i < t.NumField(); i++ {
		names = append(names, t.Field(i).Name)
	}
	return names
}

// parseGolden returns the encoding in a golden file: its non-comment lines.
func parseGolden(t *testing.T, text string) []byte {
	t.Helper()
	var h strings.Builder
	for line := range strings.Lines(text) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			h.WriteString(line)
		}
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		t.Fatalf("golden hex: %v", err)
	}
	return b
}

// TestGolden decodes every golden vector, compares it with the sample it
// was made from, and re-encodes it to the same bytes. With -update it
// rewrites the vectors and the fuzz seed corpus instead.
func TestGolden(t *testing.T) {
	c := newCodec(t, wire.Config{})
	for _, s := range samples() {
		path := filepath.Join(goldenDir, s.name+".txt")
		enc, err := c.Marshal(s.msg)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", s.name, err)
		}
		want := renderGolden(t, s, enc)
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			writeSeed(t, s.name, enc)
			continue
		}
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./wire -run TestGolden -update to create it)", s.name, err)
		}
		golden := parseGolden(t, string(text))
		m, err := c.Unmarshal(golden)
		if err != nil {
			t.Fatalf("%s: Unmarshal golden: %v", s.name, err)
		}
		if !reflect.DeepEqual(m, s.msg) {
			t.Errorf("%s: golden decodes to %+v, want %+v", s.name, m, s.msg)
		}
		again, err := c.Marshal(m)
		if err != nil || !bytes.Equal(again, golden) {
			t.Errorf("%s: re-encoding = %x, %v; golden = %x", s.name, again, err, golden)
		}
		if !bytes.Equal(enc, golden) {
			t.Errorf("%s: encoding changed:\n got %x\nwant %x", s.name, enc, golden)
		}
		if string(text) != want {
			t.Errorf("%s: golden file is stale; diff it against:\n%s", s.name, want)
		}
	}
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(samples()) {
		t.Errorf("%d golden files for %d samples: remove stale files from %s", len(files), len(samples()), goldenDir)
	}
	if *update {
		for _, tc := range strictCases() {
			writeSeed(t, "bad-"+tc.name, mustHex(t, tc.hex))
		}
	}
}

// writeSeed writes one file of the fuzz seed corpus in Go's corpus format.
func writeSeed(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
