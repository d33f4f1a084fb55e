// Package cputime reads the CPU time the process has used, for benchmarks
// that report what their operations cost the machine rather than how long
// they took: on a shared, noisy machine, CPU time per operation varies
// much less between runs than elapsed time does.
package cputime
