package remote

import (
	"context"
	"fmt"
	"io"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// Iterator returns the committed transactions with from <= TID <= to,
// fetched a page at a time.
func (c *Client) Iterator(ctx context.Context, from, to storage.TID) (storage.TransactionIterator, error) {
	if c.isClosed() {
		return nil, opErr("iterator", errClosed)
	}
	return &iterator{c: c, from: from, to: to}, nil
}

type iterator struct {
	c        *Client
	from, to storage.TID
	page     []*storage.Transaction
	done     bool
	closed   bool
}

// Next returns the next transaction, or io.EOF after the last one.
func (it *iterator) Next(ctx context.Context) (*storage.Transaction, error) {
	for len(it.page) == 0 {
		if it.closed {
			return nil, opErr("iterator", fmt.Errorf("iterator closed: %w", storage.ErrClosed))
		}
		if it.done {
			return nil, io.EOF
		}
		if err := it.fetch(ctx); err != nil {
			return nil, opErr(fmt.Sprintf("iterate from %s", it.from), err)
		}
	}
	t := it.page[0]
	it.page = it.page[1:]
	return t, nil
}

// fetch reads the next page.
func (it *iterator) fetch(ctx context.Context) error {
	m, items, err := it.c.readCall(ctx, func(id uint64, atLeast storage.TID) wire.Message {
		return &wire.CIterate{ID: id, From: uint64(it.from), To: uint64(it.to), AtLeast: uint64(atLeast)}
	})
	if err != nil {
		return err
	}
	next, err := answer[*wire.CNum](m)
	if err != nil {
		return err
	}
	var page []*storage.Transaction
	for _, item := range items {
		switch item := item.(type) {
		case *wire.CTxn:
			if n := len(page); n > 0 && storage.TID(item.TID) <= page[n-1].TID || storage.TID(item.TID) < it.from {
				return fmt.Errorf("the node sent transaction %s out of order", storage.TID(item.TID))
			}
			page = append(page, &storage.Transaction{
				TID: storage.TID(item.TID), Chain: storage.Checksum(item.Chain),
				Meta: storage.TxnMeta{User: item.User, Description: item.Description, Extension: item.Extension},
			})
		case *wire.CRecord:
			if len(page) == 0 {
				return fmt.Errorf("the node sent a record before its transaction")
			}
			t := page[len(page)-1]
			t.Records = append(t.Records, storage.Record{OID: storage.OID(item.OID), Data: item.Data})
		default:
			return fmt.Errorf("the node sent %q in an iteration", item.Method())
		}
	}
	if next.Value == 0 {
		it.done = true
	} else if storage.TID(next.Value) <= it.from {
		return fmt.Errorf("the node's next page starts at %s, not after %s", storage.TID(next.Value), it.from)
	} else {
		it.from = storage.TID(next.Value)
	}
	it.page = page
	if len(page) > 0 {
		it.c.seen(page[len(page)-1].TID)
	}
	return nil
}

// Close releases the iterator.
func (it *iterator) Close() error {
	it.closed = true
	it.page = nil
	return nil
}
