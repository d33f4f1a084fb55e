// Command repld runs one node of a repld cluster: `repld primary` (the
// replicating store and its admin endpoint), `repld replica` (applies the
// primary's stream, serves reads), `repld demo` (a whole cluster in one
// process showing a quarantine), `repld bench` (a workload against running
// nodes over the network client) or `repld bench-table` (the benchmark
// table of `make bench`, package internal/benchtable).
//
// It owns the wiring, nothing of the protocol: flags and their precedence
// (command line, then REPLD_* environment variables, then the --config file,
// then defaults), zap logging (bridged to the slog logger gcs takes), the
// local badger store in <data>/store, the TCP (optionally mutual-TLS) gcs node,
// the admin HTTP endpoint of package internal/admin with Prometheus metrics
// read from the node's Status at scrape time, and signal handling.
//
// # Guarantees
//
//   - Bad settings fail before anything is opened, with an error naming the
//     flag, the value, where it came from and what would work.
//   - The first SIGINT or SIGTERM shuts the node down in order: the admin
//     server stops taking requests (healthz turns 503) and finishes those in
//     progress, then the primary or replica closes (and with it the store),
//     then the gcs node. The exit status is 0 when all of that succeeded. A
//     second signal kills the process.
//   - The config file is parsed strictly (see parseConfig) and fuzzed.
//
// # Testing aid
//
// `repld primary --debug-workload` (hidden from --help) adds
// POST /debug/commit?txns=N&size=B to the admin endpoint: it commits N
// transactions, each writing one new object of B bytes, through the
// replicating store and answers with the count and the last TID and chain.
// The primary has no client protocol yet; this lets process-level tests drive
// a workload. Never enable it in production: anyone who reaches the admin
// address can write.
package main
