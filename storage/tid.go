package storage

import (
	"fmt"
	"time"
)

// TID names a committed transaction. Its 64 bits follow ZODB's TimeStamp
// layout: the high 32 bits count minutes since 1900-01-01 00:00 UTC in a
// calendar of 31-day months ((((year-1900)*12+month-1)*31+day-1)*24+hour)*60
// +minute; the low 32 bits are the fraction of that minute, seconds·2³²/60.
// TIDs of one store are strictly increasing. TID 0 means "none" (before the
// first transaction; the serial of a new object).
type TID uint64

// String formats the TID as 16 hex digits.
func (t TID) String() string { return fmt.Sprintf("%016x", uint64(t)) }

// Bytes returns the TID as 8 big-endian bytes.
func (t TID) Bytes() [8]byte { return OID(t).Bytes() }

// ParseTID parses 16 (or fewer) hex digits, with or without a 0x prefix.
func ParseTID(s string) (TID, error) {
	v, err := parseHex64(s)
	if err != nil {
		return 0, fmt.Errorf("parse TID %q: %w", s, err)
	}
	return TID(v), nil
}

// minuteFraction is 2³²/60: one second in units of the low 32 bits.
const minuteFraction = float64(1<<32) / 60

// TIDFromTime returns the TID for the instant t (converted to UTC). Times
// before 1900 map to TID 0.
func TIDFromTime(t time.Time) TID {
	t = t.UTC()
	if t.Year() < 1900 {
		return 0
	}
	minutes := ((((uint64(t.Year())-1900)*12+uint64(t.Month())-1)*31+uint64(t.Day())-1)*24+
		uint64(t.Hour()))*60 + uint64(t.Minute())
	seconds := float64(t.Second()) + float64(t.Nanosecond())/1e9
	frac := uint64(seconds * minuteFraction)
	if frac > 0xFFFFFFFF {
		frac = 0xFFFFFFFF
	}
	return TID(minutes<<32 | frac)
}

// Time returns the instant the TID stands for, in UTC, to the nearest
// nanosecond the layout can express. A TID that does not name a valid date
// (for example a 32nd day) is normalised as time.Date does.
func (t TID) Time() time.Time {
	minutes := uint64(t) >> 32
	frac := uint64(t) & 0xFFFFFFFF
	minute := int(minutes % 60)
	hours := minutes / 60
	hour := int(hours % 24)
	days := hours / 24
	day := int(days%31) + 1
	months := days / 31
	month := time.Month(months%12) + 1
	year := int(months/12) + 1900
	nanos := time.Duration(float64(frac) / minuteFraction * 1e9)
	return time.Date(year, month, day, hour, minute, 0, 0, time.UTC).Add(nanos)
}

// NextTID returns the TID for a transaction committed at now after last:
// max(TIDFromTime(now), last+1). The result is strictly greater than last
// even when the clock goes backwards.
func NextTID(now time.Time, last TID) TID {
	if t := TIDFromTime(now); t > last {
		return t
	}
	return last + 1
}
