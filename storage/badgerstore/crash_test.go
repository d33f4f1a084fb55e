package badgerstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/repld/repld/storage"
)

// The crash test re-executes the test binary as a child that commits in a
// loop until the parent kills it with SIGKILL.
const (
	crashDirEnv  = "REPLD_BADGERSTORE_CRASH_DIR"
	crashSeedEnv = "REPLD_BADGERSTORE_CRASH_SEED"
	// crashShared is an object every crash-test transaction rewrites; the
	// root OID, below every OID NewOID returns.
	crashShared = storage.OID(0)
	// crashSharedIndex is the pattern index of crashShared's data.
	crashSharedIndex = 1 << 20
)

// crashConfig keeps objects of 64 KiB and more in blob files.
func crashConfig(dir string) Config {
	return Config{Dir: dir, MemTableSize: 4 << 20, ValueThreshold: 4 << 10, BlobThreshold: 64 << 10, BlockCacheSize: 8 << 20}
}

// crashSizes returns the object sizes of the transaction with this seed:
// mostly small objects, some in the value log, some in blob files, now
// and then more objects than one badger transaction holds (and a blob).
func crashSizes(seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 7))
	if rng.IntN(20) == 0 {
		return append(repeat(7000, 16), 100<<10)
	}
	sizes := make([]int, 1+rng.IntN(8))
	for i := range sizes {
		switch r := rng.IntN(10); {
		case r < 7:
			sizes[i] = rng.IntN(2000)
		case r < 9:
			sizes[i] = 4<<10 + rng.IntN(60<<10)
		default:
			sizes[i] = 100<<10 + rng.IntN(200<<10)
		}
	}
	return sizes
}

// crashChild runs the child's loop if this process is one; it never
// returns true to a caller that should go on running tests.
func crashChild() bool {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return false
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	if err := crashLoop(dir, seed); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	os.Exit(0)
	return true
}

// crashLoop commits transactions and prints each TID once Finish
// returned, for at most a minute (the parent kills it long before).
func crashLoop(dir string, seed uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, crashConfig(dir))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	for ctx.Err() == nil {
		txSeed := rng.Uint64()
		_, serial, err := s.Load(ctx, crashShared)
		if err != nil && serial != 0 {
			return err
		}
		txn, err := s.Begin(ctx, storage.TxnMeta{Description: []byte(strconv.FormatUint(txSeed, 10))})
		if err != nil {
			return err
		}
		for i, n := range crashSizes(txSeed) {
			oid, err := s.NewOID(ctx)
			if err != nil {
				return err
			}
			if err := txn.Store(ctx, oid, 0, pattern(txSeed, i, n)); err != nil {
				return err
			}
		}
		if err := txn.Store(ctx, crashShared, serial, pattern(txSeed, crashSharedIndex, 64)); err != nil {
			return err
		}
		if err := txn.Vote(ctx); err != nil {
			return err
		}
		c, err := txn.Finish(ctx)
		if err != nil {
			return err
		}
		if _, err := fmt.Println(uint64(c.TID)); err != nil {
			return err
		}
	}
	return s.Close()
}

// checkCrashTxn checks that a transaction holds exactly what the child
// wrote for its seed.
func checkCrashTxn(t *testing.T, tx *storage.Transaction) {
	t.Helper()
	seed, err := strconv.ParseUint(string(tx.Meta.Description), 10, 64)
	if err != nil {
		t.Fatalf("transaction %s: description %q: %v", tx.TID, tx.Meta.Description, err)
	}
	sizes := crashSizes(seed)
	if len(tx.Records) != len(sizes)+1 {
		t.Fatalf("transaction %s: %d records, want %d", tx.TID, len(tx.Records), len(sizes)+1)
	}
	if tx.Records[0].OID != crashShared {
		t.Fatalf("transaction %s: first record is %s, want %s", tx.TID, tx.Records[0].OID, crashShared)
	}
	for i, r := range tx.Records {
		idx, n := i-1, 64
		if i == 0 {
			idx = crashSharedIndex
		} else {
			n = sizes[i-1]
		}
		if want := pattern(seed, idx, n); string(r.Data) != string(want) {
			t.Fatalf("transaction %s: record %d (%s) has %d bytes, not the %d written", tx.TID, i, r.OID, len(r.Data), n)
		}
	}
}

// TestCrash kills a committing child at random moments: every
// transaction whose Finish returned is there, whole; no transaction is
// partial; TIDs keep increasing across restarts.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var last storage.TID
	for round := range 5 {
		printed := runCrashRound(t, dir, uint64(round), time.Duration(100+rng.IntN(700))*time.Millisecond)

		cfg := testConfig(t, dir)
		cfg.BlobThreshold = crashConfig(dir).BlobThreshold
		s := openStore(t, cfg)
		txns := checkChains(t, s)
		checkBlobFiles(t, s)
		have := make(map[storage.TID]bool, len(txns))
		for _, tx := range txns {
			checkCrashTxn(t, tx)
			have[tx.TID] = true
		}
		for _, tid := range printed {
			if tid <= last {
				t.Fatalf("round %d: TID %s not after %s, the last one before the round", round, tid, last)
			}
			if !have[tid] {
				t.Fatalf("round %d: transaction %s returned from Finish but is missing", round, tid)
			}
			last = tid
		}
		if last, _ = s.LastTransaction(t.Context()); len(txns) > 0 && last != txns[len(txns)-1].TID {
			t.Fatalf("round %d: LastTransaction %s, iterator ends at %s", round, last, txns[len(txns)-1].TID)
		}
		t.Logf("round %d: %d transactions returned from Finish, %d in the store", round, len(printed), len(txns))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runCrashRound starts the child, lets it commit for about d after its
// first commit (or at most 30 s without one), kills it and returns the
// TIDs it printed.
func runCrashRound(t *testing.T, dir string, seed uint64, d time.Duration) []storage.TID {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var printed []storage.TID
	add := func(line string) {
		v, err := strconv.ParseUint(line, 10, 64)
		if err != nil {
			t.Errorf("child printed %q", line)
			return
		}
		printed = append(printed, storage.TID(v))
	}
	first := time.NewTimer(30 * time.Second)
	defer first.Stop()
	var kill <-chan time.Time
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break wait // the child exited by itself
			}
			add(line)
			if kill == nil {
				kill = time.After(d)
			}
		case <-first.C:
			if kill == nil {
				break wait
			}
		case <-kill:
			break wait
		}
	}
	_ = cmd.Process.Kill() // SIGKILL
	for line := range lines {
		add(line)
	}
	if err := cmd.Wait(); err != nil && cmd.ProcessState.Success() {
		t.Fatal(err)
	}
	if len(printed) == 0 {
		t.Fatalf("crash child committed nothing")
	}
	return printed
}

// checkBlobFiles checks that every blob file has its index key and every
// index key its file, after Open removed the orphans.
func checkBlobFiles(t *testing.T, s *Store) {
	t.Helper()
	files, err := os.ReadDir(s.blobDir)
	if err != nil {
		t.Fatal(err)
	}
	if keys := liveKeys(t, s, prefixBlob); keys != len(files) {
		t.Fatalf("%d blob files, %d blob index keys", len(files), keys)
	}
}
