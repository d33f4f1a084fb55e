package cputime

import (
	"runtime"
	"testing"
)

func TestProcessGrows(t *testing.T) {
	before, ok := Process()
	if !ok {
		if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
			t.Fatal("CPU time unknown on a unix system")
		}
		t.Skip("CPU time is not available on", runtime.GOOS)
	}
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	after, _ := Process()
	if after <= before {
		t.Fatalf("CPU time went from %v to %v over a busy loop (%d)", before, after, x)
	}
}
