package storage

import (
	"fmt"
	"math"
	"math/bits"
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

// nanosPerMinute is the unit of the low 32 bits: they count 2³²ths of it.
const nanosPerMinute = 60 * uint64(time.Second)

// maxMinutes is the last minute the high 32 bits can express (in the year
// 9917).
const maxMinutes = math.MaxUint32

// TIDFromTime returns the TID for the instant t (converted to UTC), rounded
// down to the layout's unit (60/2³² s, about 14 ns). Times before 1900 map to
// TID 0; times after the last expressible minute saturate at the largest
// TID rather than wrapping to a small one.
func TIDFromTime(t time.Time) TID {
	t = t.UTC()
	if t.Year() < 1900 {
		return 0
	}
	minutes := ((((uint64(t.Year())-1900)*12+uint64(t.Month())-1)*31+uint64(t.Day())-1)*24+
		uint64(t.Hour()))*60 + uint64(t.Minute())
	if minutes > maxMinutes {
		return TID(math.MaxUint64)
	}
	// Integer arithmetic, so the same instant gives the same TID on every
	// platform: frac = floor(nanos·2³²/nanosPerMinute) < 2³².
	nanos := uint64(t.Second())*uint64(time.Second) + uint64(t.Nanosecond())
	hi, lo := bits.Mul64(nanos, 1<<32)
	frac, _ := bits.Div64(hi, lo, nanosPerMinute)
	return TID(minutes<<32 | frac)
}

// Time returns the instant the TID stands for, in UTC: the first nanosecond
// that maps back to it, so TIDFromTime(t.Time()) == t for every TID that
// names a valid date. A TID that does not name a valid date (for example a
// 32nd day) is normalised as time.Date does.
func (t TID) Time() time.Time {
	minutes := uint64(t) >> 32
	frac := uint64(t) & math.MaxUint32
	minute := int(minutes % 60)
	hours := minutes / 60
	hour := int(hours % 24)
	days := hours / 24
	day := int(days%31) + 1
	months := days / 31
	month := time.Month(months%12) + 1
	year := int(months/12) + 1900
	// ceil(frac·nanosPerMinute/2³²); the product fits in 68 bits.
	hi, lo := bits.Mul64(frac, nanosPerMinute)
	nanos := hi<<32 | lo>>32
	if lo&math.MaxUint32 != 0 {
		nanos++
	}
	return time.Date(year, month, day, hour, minute, 0, int(nanos), time.UTC)
}

// NextTID returns the TID for a transaction committed at now after last:
// max(TIDFromTime(now), last+1). The result is strictly greater than last
// even when the clock goes backwards, except after the largest TID (in the
// year 9917), where it wraps to 0: callers that cannot rule that out check
// the result.
func NextTID(now time.Time, last TID) TID {
	if t := TIDFromTime(now); t > last {
		return t
	}
	return last + 1
}
