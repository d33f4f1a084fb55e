package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/repld/repld/storage"
)

// Equal compares two stores transaction by transaction: TIDs, metadata,
// chain values and records (OIDs and data). It returns nil when they are
// equal, or an error naming the first transaction and field that differ.
func Equal(ctx context.Context, a, b storage.Storage) error {
	ia, err := a.Iterator(ctx, 0, 0)
	if err != nil {
		return err
	}
	defer ia.Close()
	ib, err := b.Iterator(ctx, 0, 0)
	if err != nil {
		return err
	}
	defer ib.Close()
	for n := 0; ; n++ {
		ta, errA := ia.Next(ctx)
		tb, errB := ib.Next(ctx)
		switch {
		case errA == io.EOF && errB == io.EOF:
			return nil
		case errA != nil && errA != io.EOF:
			return errA
		case errB != nil && errB != io.EOF:
			return errB
		case errA == io.EOF:
			return fmt.Errorf("stores differ at transaction %d: only the second has %s", n, tb.TID)
		case errB == io.EOF:
			return fmt.Errorf("stores differ at transaction %d: only the first has %s", n, ta.TID)
		}
		if err := sameTxn(ta, tb); err != nil {
			return fmt.Errorf("stores differ at transaction %d (%s): %w", n, ta.TID, err)
		}
	}
}

func sameTxn(a, b *storage.Transaction) error {
	switch {
	case a.TID != b.TID:
		return fmt.Errorf("TID %s vs %s", a.TID, b.TID)
	case a.Chain != b.Chain:
		return fmt.Errorf("chain %s vs %s", a.Chain, b.Chain)
	case !bytes.Equal(a.Meta.User, b.Meta.User) || !bytes.Equal(a.Meta.Description, b.Meta.Description) ||
		!bytes.Equal(a.Meta.Extension, b.Meta.Extension):
		return fmt.Errorf("metadata %+v vs %+v", a.Meta, b.Meta)
	case len(a.Records) != len(b.Records):
		return fmt.Errorf("%d records vs %d", len(a.Records), len(b.Records))
	}
	for i := range a.Records {
		ra, rb := a.Records[i], b.Records[i]
		if ra.OID != rb.OID {
			return fmt.Errorf("record %d: OID %s vs %s", i, ra.OID, rb.OID)
		}
		if !bytes.Equal(ra.Data, rb.Data) {
			return fmt.Errorf("record %s: data of %d bytes vs %d bytes differs", ra.OID, len(ra.Data), len(rb.Data))
		}
	}
	return nil
}
