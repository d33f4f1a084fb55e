package badgerstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
)

// Defaults applied to zero fields of Config.
const (
	// DefaultMaxObjectSize bounds one object revision: 512 MiB.
	DefaultMaxObjectSize = 512 << 20
	// DefaultValueThreshold: values of at least 64 KiB go to badger's value
	// log, smaller ones live in the LSM tree next to their key.
	DefaultValueThreshold = 64 << 10
	// DefaultMemTableSize is badger's memtable size: 64 MiB. A single
	// badger transaction holds at most 15% of it in keys and inline values.
	DefaultMemTableSize = 64 << 20
	// DefaultValueLogFileSize is the size of one value log file: 1 GiB - 1,
	// badger's default and maximum.
	DefaultValueLogFileSize = 1<<30 - 1
	// DefaultBlockCacheSize is badger's block cache: 64 MiB.
	DefaultBlockCacheSize = 64 << 20
	// DefaultNumCompactors is the number of badger compaction goroutines.
	DefaultNumCompactors = 2
	// DefaultBlobThreshold: object data of at least 1 MiB goes to a blob
	// file of its own, written once, instead of into badger.
	DefaultBlobThreshold = 1 << 20
	// DefaultOIDBlock is how many OIDs NewOID reserves with one durable
	// write.
	DefaultOIDBlock = 1024
)

// badgerMaxValueThreshold is badger's own upper bound on ValueThreshold.
const badgerMaxValueThreshold = 1 << 20

// Config configures a Store. The zero value of every field except Dir is
// a safe default.
type Config struct {
	// Dir holds the badger files. Required.
	Dir string
	// NoSync, if true, lets Finish return before its transaction is on
	// stable storage, for tests and scratch stores: a crash of the process
	// loses nothing, but a crash of the machine may lose recent
	// transactions or leave their value-log data unreadable. Default
	// false: Finish returns once its transaction is durable.
	NoSync bool
	// Logger receives the store's and badger's messages; nil discards them.
	Logger *zap.Logger
	// Now is the clock for new TIDs; nil means time.Now.
	Now func() time.Time

	// MaxObjectSize bounds one object revision in bytes (Vote reports
	// storage.ErrTooLarge above it). 0 means DefaultMaxObjectSize. It may
	// not exceed ValueLogFileSize minus 1 MiB.
	MaxObjectSize int64
	// MaxTxnSize bounds the object data of one transaction in bytes. 0
	// means no limit: transactions of any size commit whole.
	MaxTxnSize int64

	// ValueThreshold: object revisions of at least this many bytes live in
	// badger's value log. 0 means DefaultValueThreshold.
	ValueThreshold int64
	// BlobThreshold: object revisions of at least this many bytes (and at
	// most MaxObjectSize) are kept in files of their own under Dir/blobs,
	// written once; badger holds a small reference. Smaller ones stay in
	// badger. 0 means DefaultBlobThreshold; a value above MaxObjectSize
	// keeps every object in badger.
	BlobThreshold int64
	// MemTableSize is badger's memtable size. 0 means DefaultMemTableSize.
	MemTableSize int64
	// ValueLogFileSize is the size of one value log file. 0 means
	// DefaultValueLogFileSize.
	ValueLogFileSize int64
	// BlockCacheSize is badger's block cache in bytes. 0 means
	// DefaultBlockCacheSize.
	BlockCacheSize int64
	// Compression of badger's tables; the zero value is none (object data
	// is usually compressed by the application already).
	Compression options.CompressionType
	// NumCompactors is the number of compaction goroutines, at least 2.
	// 0 means DefaultNumCompactors.
	NumCompactors int
	// OIDBlock is how many OIDs one durable reservation covers. 0 means
	// DefaultOIDBlock.
	OIDBlock uint64
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
	if c.ValueThreshold == 0 {
		c.ValueThreshold = DefaultValueThreshold
	}
	if c.BlobThreshold == 0 {
		c.BlobThreshold = DefaultBlobThreshold
	}
	if c.MemTableSize == 0 {
		c.MemTableSize = DefaultMemTableSize
	}
	if c.ValueLogFileSize == 0 {
		c.ValueLogFileSize = DefaultValueLogFileSize
	}
	if c.BlockCacheSize == 0 {
		c.BlockCacheSize = DefaultBlockCacheSize
	}
	if c.NumCompactors == 0 {
		c.NumCompactors = DefaultNumCompactors
	}
	if c.OIDBlock == 0 {
		c.OIDBlock = DefaultOIDBlock
	}
	return c
}

// Validate reports every invalid setting (after defaults are applied),
// naming the setting, its value and the fix.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("badgerstore: "+format, args...)) }
	if c.Dir == "" {
		bad("Dir is empty; set it to the directory that holds the store")
	}
	if c.MemTableSize < 1<<20 {
		bad("MemTableSize %d is below 1 MiB; set it to at least 1048576 (0 for the default %d)", c.MemTableSize, DefaultMemTableSize)
	}
	if c.ValueLogFileSize < 1<<20 || c.ValueLogFileSize >= 2<<30 {
		bad("ValueLogFileSize %d is out of range; set it between 1 MiB and 2 GiB - 1 (0 for the default %d)", c.ValueLogFileSize, DefaultValueLogFileSize)
	}
	if maxBatch := c.MemTableSize * 15 / 100; c.ValueThreshold < 1 || c.ValueThreshold > badgerMaxValueThreshold || c.ValueThreshold > maxBatch/4 {
		bad("ValueThreshold %d is out of range; set it between 1 and min(1 MiB, MemTableSize*15%%/4 = %d), or raise MemTableSize", c.ValueThreshold, min(badgerMaxValueThreshold, maxBatch/4))
	}
	if c.MaxObjectSize < 1 {
		bad("MaxObjectSize %d is out of range; set it to at least 1 (0 for the default %d)", c.MaxObjectSize, DefaultMaxObjectSize)
	}
	if c.BlobThreshold < 0 {
		bad("BlobThreshold %d is negative; set it to a byte count (0 for the default %d, above MaxObjectSize to keep every object in badger)", c.BlobThreshold, DefaultBlobThreshold)
	}
	// The largest object kept in badger must fit one value log file.
	if inline := min(c.MaxObjectSize, c.BlobThreshold-1); c.MaxObjectSize >= 1 && c.BlobThreshold >= 0 && inline > c.ValueLogFileSize-(1<<20) {
		bad("MaxObjectSize %d with BlobThreshold %d keeps objects of up to %d bytes in badger, above ValueLogFileSize - 1 MiB (%d); lower BlobThreshold or MaxObjectSize, or raise ValueLogFileSize", c.MaxObjectSize, c.BlobThreshold, inline, c.ValueLogFileSize-(1<<20))
	}
	if c.MaxTxnSize < 0 {
		bad("MaxTxnSize %d is negative; set it to a byte count, or 0 for no limit", c.MaxTxnSize)
	}
	if c.BlockCacheSize < 0 {
		bad("BlockCacheSize %d is negative; set it to a byte count (0 for the default %d)", c.BlockCacheSize, DefaultBlockCacheSize)
	}
	if c.Compression != options.None && c.Compression != options.Snappy && c.Compression != options.ZSTD {
		bad("Compression %d is unknown; use options.None, options.Snappy or options.ZSTD", c.Compression)
	}
	if c.NumCompactors < 2 {
		bad("NumCompactors %d is below 2; badger needs at least 2 (0 for the default %d)", c.NumCompactors, DefaultNumCompactors)
	}
	return errors.Join(errs...)
}

// badgerOptions maps a validated, defaulted Config to badger's options.
func (c Config) badgerOptions() badger.Options {
	return badger.DefaultOptions(c.Dir).
		// The store syncs itself: one shared sync per group of commits.
		WithSyncWrites(false).
		WithLogger(zapLogger{c.Logger.Named("badger").Sugar()}).
		WithValueThreshold(c.ValueThreshold).
		WithMemTableSize(c.MemTableSize).
		WithValueLogFileSize(c.ValueLogFileSize).
		WithBlockCacheSize(c.BlockCacheSize).
		WithCompression(c.Compression).
		WithNumCompactors(c.NumCompactors).
		// Every version above the discard timestamp (the pack horizon) is
		// kept; at or below it, only the newest: exactly Pack's semantics.
		WithNumVersionsToKeep(1).
		// The commit lock serialises commits.
		WithDetectConflicts(false).
		// badger's metrics register process-wide expvars.
		WithMetricsEnabled(false)
}

// zapLogger adapts zap to badger's Logger interface.
type zapLogger struct{ l *zap.SugaredLogger }

func (z zapLogger) Errorf(f string, a ...any)   { z.l.Errorf(f, a...) }
func (z zapLogger) Warningf(f string, a ...any) { z.l.Warnf(f, a...) }
func (z zapLogger) Infof(f string, a ...any)    { z.l.Infof(f, a...) }
func (z zapLogger) Debugf(f string, a ...any)   { z.l.Debugf(f, a...) }
