package storage

import (
	"context"
	"errors"
	"io"
	"iter"
)

// Transactions ranges over the committed transactions of s with from <= TID
// <= to (to == 0: up to the last one) through its Iterator, which it closes
// when the loop ends. An error ends the range: it is yielded once, with a
// nil transaction.
func Transactions(ctx context.Context, s Storage, from, to TID) iter.Seq2[*Transaction, error] {
	return func(yield func(*Transaction, error) bool) {
		it, err := s.Iterator(ctx, from, to)
		if err != nil {
			yield(nil, err)
			return
		}
		defer it.Close()
		for {
			txn, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(txn, err) || err != nil {
				return
			}
		}
	}
}
