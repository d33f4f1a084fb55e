package storage

import (
	"encoding/hex"
	"fmt"
)

// MarshalText formats the OID as 16 hex digits, so JSON and logs show it as
// ZODB tools do.
func (o OID) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText parses what MarshalText produces (see ParseOID).
func (o *OID) UnmarshalText(b []byte) error {
	v, err := ParseOID(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// MarshalText formats the TID as 16 hex digits.
func (t TID) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText parses what MarshalText produces (see ParseTID).
func (t *TID) UnmarshalText(b []byte) error {
	v, err := ParseTID(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalText formats the checksum as 64 hex digits.
func (c Checksum) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses 64 hex digits.
func (c *Checksum) UnmarshalText(b []byte) error {
	var v Checksum
	if len(b) != 2*ChecksumSize {
		return fmt.Errorf("parse checksum %q: want 64 hex digits", b)
	}
	if _, err := hex.Decode(v[:], b); err != nil {
		return fmt.Errorf("parse checksum %q: %w", b, err)
	}
	*c = v
	return nil
}
