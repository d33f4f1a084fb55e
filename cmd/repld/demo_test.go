package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := runDemo(t.Context(), &out, t.TempDir(), zaptest.NewLogger(t))
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"r2 is quarantined on both sides", "no space left on device", "equals the primary's", "OK: every check held"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}
