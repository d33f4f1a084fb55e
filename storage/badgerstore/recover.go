package badgerstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/repld/repld/storage"
)

// intent is a staged transaction past its commit point.
type intent struct {
	tid   storage.TID
	nonce uint64
	chain storage.Checksum
}

// recover finishes the staged transactions a crash interrupted after
// their commit point, then discards every other staged key.
func (s *Store) recover(ctx context.Context) error {
	intents, err := s.readIntents()
	if err != nil {
		return err
	}
	for _, in := range intents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.redo(in); err != nil {
			return fmt.Errorf("finish transaction %s: %w", in.tid, err)
		}
		s.log.Info("finished a transaction interrupted after its commit point", zap.Stringer("tid", in.tid))
	}
	n, err := s.discardStaged()
	if err != nil {
		return fmt.Errorf("discard staged data: %w", err)
	}
	if n > 0 {
		s.log.Info("discarded staged data of uncommitted transactions", zap.Int("keys", n))
	}
	return nil
}

func (s *Store) readIntents() ([]intent, error) {
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()
	it := rtxn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixIntent}})
	defer it.Close()
	var intents []intent
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		tid, err := decodeKey9(item.Key(), prefixIntent)
		if err != nil {
			return nil, err
		}
		b, err := itemValue(item, "intent record")
		if err != nil {
			return nil, err
		}
		nonce, chain, err := decodeIntent(b)
		if err != nil {
			return nil, err
		}
		intents = append(intents, intent{tid: storage.TID(tid), nonce: nonce, chain: chain})
	}
	return intents, nil
}

// redo writes a committed transaction from its staged copy, makes it
// durable and removes its intent record. Writing the same version again
// is harmless, so a crash during redo only means another redo.
func (s *Store) redo(in intent) error {
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()
	item, err := rtxn.Get(stageKey9(in.nonce))
	if err != nil {
		return fmt.Errorf("read staged metadata %016x: %w", in.nonce, err)
	}
	b, err := itemValue(item, "staged metadata")
	if err != nil {
		return err
	}
	rec, err := decodeTxnRecord(b)
	if err != nil {
		return err
	}
	var oids []storage.OID
	prefix := stageKey9(in.nonce)
	it := rtxn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) == len(prefix) {
			continue
		}
		if len(k) != len(prefix)+8 {
			it.Close()
			return fmt.Errorf("%w: staging key %x has %d bytes, want 17", ErrCorrupt, k, len(k))
		}
		oids = append(oids, storage.OID(binary.BigEndian.Uint64(k[len(prefix):])))
	}
	it.Close()
	get := func(oid storage.OID) ([]byte, byte, error) {
		item, err := rtxn.Get(stageKey(in.nonce, oid))
		if err != nil {
			return nil, 0, fmt.Errorf("read staged %s: %w", oid, err)
		}
		// A staged object is its data, or the reference to its blob file.
		m := item.UserMeta()
		if m != formatV1 && m != formatBlob {
			return nil, 0, fmt.Errorf("%w: staged object %s of %s has format %d, want %d or %d", ErrCorrupt, oid, in.tid, m, formatV1, formatBlob)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return nil, 0, fmt.Errorf("read staged %s: %w", oid, err)
		}
		return v, m, nil
	}
	if err := s.apply(in.tid, in.chain, rec.Meta, oids, get); err != nil {
		return err
	}
	if err := s.syncRound(); err != nil {
		return err
	}
	return s.deleteIntent(in.tid)
}

// discardStaged deletes every live staging key, each at the version after
// the one that wrote it.
func (s *Store) discardStaged() (int, error) {
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()
	it := rtxn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixStage}})
	defer it.Close()
	var w *chunkWriter
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if w == nil || w.version != item.Version()+1 {
			if w != nil {
				if err := w.flush(); err != nil {
					return n, err
				}
			}
			w = s.newChunkWriter(item.Version() + 1)
		}
		if err := w.del(item.KeyCopy(nil)); err != nil {
			return n, err
		}
		n++
	}
	if w != nil {
		if err := w.flush(); err != nil {
			return n, err
		}
	}
	return n, nil
}
