//go:build unix

package benchtable

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time, user and system, this process has used
// so far: every node of a row runs in it, so its growth over a row is what
// the row's commits cost the machine.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
