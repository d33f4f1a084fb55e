package storage_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/repld/repld/storage"
)

// layout builds a TID from its parts as the TimeStamp layout defines it:
// minutes since 1900-01-01 in a calendar of 31-day months in the high 32
// bits, seconds·2³²/60 (secNum/secDen seconds, rounded down) in the low 32.
func layout(year, month, day, hour, minute int, secNum, secDen uint64) storage.TID {
	minutes := uint64(((((year-1900)*12+month-1)*31+day-1)*24+hour)*60 + minute)
	frac := new(big.Int).Lsh(new(big.Int).SetUint64(secNum), 32)
	frac.Quo(frac, new(big.Int).SetUint64(60*secDen))
	return storage.TID(minutes<<32 | frac.Uint64())
}

func TestTIDFromTimeVectors(t *testing.T) {
	cases := []struct {
		name string
		time time.Time
		want storage.TID // written out, checked against layout too
		hand storage.TID
	}{
		{"epoch", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0, layout(1900, 1, 1, 0, 0, 0, 1)},
		{"15 s is a quarter minute", time.Date(1900, 1, 1, 0, 0, 15, 0, time.UTC), 0x40000000, layout(1900, 1, 1, 0, 0, 15, 1)},
		// minutes ((((126·12+10)·31+28)·24+12)·60+34 = 67983154;
		// fraction floor(56.5·2³²/60) = 4044427537.
		{"2026-11-29 12:34:56.5", time.Date(2026, 11, 29, 12, 34, 56, 500_000_000, time.UTC), 67983154<<32 | 4044427537, layout(2026, 11, 29, 12, 34, 113, 2)},
		{"leap day", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), 0x03f6df7ffbbbbbbb, layout(2024, 2, 29, 23, 59, 59, 1)},
		// February's unused days 30 and 31 leave a gap of 2·1440+1 minutes.
		{"day after leap day", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), 0x03f6eac000000000, layout(2024, 3, 1, 0, 0, 0, 1)},
		{"year end", time.Date(2023, 12, 31, 23, 59, 59, 999_999_999, time.UTC), 0x03f58dffffffffff, layout(2023, 12, 31, 23, 59, 59_999_999_999, 1e9)},
		{"new year", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 0x03f58e0000000000, layout(2024, 1, 1, 0, 0, 0, 1)},
		{"30-day month end", time.Date(2024, 4, 30, 0, 0, 0, 0, time.UTC), layout(2024, 4, 30, 0, 0, 0, 1), layout(2024, 4, 30, 0, 0, 0, 1)},
		{"not UTC", time.Date(2024, 1, 1, 2, 0, 0, 0, time.FixedZone("EET", 2*3600)), 0x03f58e0000000000, layout(2024, 1, 1, 0, 0, 0, 1)},
		{"before 1900", time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC), 0, 0},
		{"year 9917", time.Date(9917, 1, 1, 0, 0, 0, 0, time.UTC), 0xfff9948000000000, layout(9917, 1, 1, 0, 0, 0, 1)},
		{"past the last minute saturates", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), math.MaxUint64, math.MaxUint64},
	}
	for _, tc := range cases {
		if tc.want != tc.hand {
			t.Fatalf("%s: vector %s disagrees with the layout %s", tc.name, tc.want, tc.hand)
		}
		if got := storage.TIDFromTime(tc.time); got != tc.want {
			t.Errorf("%s: TIDFromTime(%v) = %s; want %s", tc.name, tc.time, got, tc.want)
		}
	}
	// Month ends: the last instant of a month is followed by the first TID
	// of the next month's first day, with the unused days in between.
	for _, month := range []time.Month{1, 2, 4, 12} {
		first := time.Date(2025, month+1, 1, 0, 0, 0, 0, time.UTC)
		lastNs := first.Add(-time.Nanosecond)
		a, b := storage.TIDFromTime(lastNs), storage.TIDFromTime(first)
		if a >= b {
			t.Errorf("month %d: last instant %s not before next month %s", month, a, b)
		}
		if b.Time() != first {
			t.Errorf("month %d: %s.Time() = %v; want %v", month, b, b.Time(), first)
		}
	}
}

func TestTIDTime(t *testing.T) {
	for _, tc := range []struct {
		tid  storage.TID
		want time.Time
	}{
		{0, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
		{0x40000000, time.Date(1900, 1, 1, 0, 0, 15, 0, time.UTC)},
		{0x03f6eac000000000, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
		// One unit is 60/2³² s = 13.97 ns: Time rounds up to 14 ns.
		{1, time.Date(1900, 1, 1, 0, 0, 0, 14, time.UTC)},
		// The 32nd day of January is normalised to February 1st.
		{layout(2024, 1, 32, 0, 0, 0, 1), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if got := tc.tid.Time(); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%s.Time() = %v; want %v", tc.tid, got, tc.want)
		}
	}
}

// validTID reports whether tid names a real date, so that it round trips.
func validTID(tid storage.TID) bool {
	days := uint64(tid) >> 32 / (24 * 60)
	day, month, year := int(days%31)+1, time.Month(days/31%12)+1, int(days/31/12)+1900
	return time.Date(year, month, day, 0, 0, 0, 0, time.UTC).Day() == day
}

func TestTIDRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		// TID → Time → TID is exact for valid dates.
		tid := storage.TID(rng.Uint64N(uint64(storage.TIDFromTime(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)))))
		if validTID(tid) {
			if back := storage.TIDFromTime(tid.Time()); back != tid {
				t.Fatalf("TIDFromTime(%s.Time()) = %s", tid, back)
			}
		}
		// Time → TID → Time loses less than one unit, rounding down.
		tm := time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).UTC()
		back := storage.TIDFromTime(tm).Time()
		if back.After(tm) || tm.Sub(back) >= 14*time.Nanosecond {
			t.Fatalf("%v → %s → %v: off by %v", tm, storage.TIDFromTime(tm), back, tm.Sub(back))
		}
	}
}

func TestNextTID(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	first := storage.NextTID(now, 0)
	if first != storage.TIDFromTime(now) {
		t.Fatalf("NextTID(now, 0) = %s; want %s", first, storage.TIDFromTime(now))
	}
	// The clock stands still, then goes backwards: still strictly increasing.
	last := first
	for i := range 100 {
		clock := now
		if i%2 == 1 {
			clock = now.Add(-time.Duration(i) * time.Hour)
		}
		next := storage.NextTID(clock, last)
		if next != last+1 {
			t.Fatalf("step %d: NextTID(%v, %s) = %s; want %s", i, clock, last, next, last+1)
		}
		last = next
	}
	// When the clock moves past last, the clock wins.
	later := now.Add(time.Second)
	if got := storage.NextTID(later, last); got != storage.TIDFromTime(later) {
		t.Fatalf("NextTID(later) = %s; want %s", got, storage.TIDFromTime(later))
	}
}

func TestTIDStringParse(t *testing.T) {
	tid := storage.TID(0x03f58e0000000abc)
	if s := tid.String(); s != "03f58e0000000abc" {
		t.Fatalf("String() = %q", s)
	}
	if b := tid.Bytes(); b != [8]byte{0x03, 0xf5, 0x8e, 0, 0, 0, 0x0a, 0xbc} {
		t.Fatalf("Bytes() = %x", b)
	}
	for in, want := range map[string]storage.TID{
		"03f58e0000000abc":   tid,
		"0x03f58e0000000abc": tid,
		"0X3F58E0000000ABC":  tid,
		"ff":                 0xff,
		"0":                  0,
		"ffffffffffffffff":   math.MaxUint64,
	} {
		if got, err := storage.ParseTID(in); err != nil || got != want {
			t.Errorf("ParseTID(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0x", "1ffffffffffffffff", "xyz", "-1", "+1", " 1", "1_0", "0x0x1"} {
		if got, err := storage.ParseTID(in); err == nil {
			t.Errorf("ParseTID(%q) = %s; want an error", in, got)
		}
	}
	for _, oid := range []storage.OID{0, 1, 0xdeadbeef, math.MaxUint64} {
		back, err := storage.ParseOID(oid.String())
		if err != nil || back != oid {
			t.Errorf("ParseOID(%q) = %s, %v", oid.String(), back, err)
		}
	}
	if _, err := storage.ParseOID("g"); err == nil {
		t.Error("ParseOID(\"g\") succeeded")
	}
}

// FuzzParseTID feeds ParseTID outside input: it never panics, and what it
// accepts prints back to the same value.
func FuzzParseTID(f *testing.F) {
	for _, s := range []string{"03f58e0000000abc", "0x1", "ffffffffffffffff", "", "0x", "1ffffffffffffffff", "-1", "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tid, err := storage.ParseTID(s)
		if err != nil {
			return
		}
		if back, err := storage.ParseTID(tid.String()); err != nil || back != tid {
			t.Fatalf("ParseTID(%q) = %s, but its String parses to %s, %v", s, tid, back, err)
		}
		if oid, err := storage.ParseOID(s); err != nil || uint64(oid) != uint64(tid) {
			t.Fatalf("ParseOID(%q) = %s, %v; ParseTID gave %s", s, oid, err, tid)
		}
	})
}

// FuzzTIDTime checks the clock conversions on any 64-bit value: no panic,
// exact round trip for TIDs that name a valid date.
func FuzzTIDTime(f *testing.F) {
	for _, v := range []uint64{0, 1, 0x40000000, 0x03f6eac000000000, 0xfff9948000000000, math.MaxUint64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		tid := storage.TID(v)
		tm := tid.Time()
		if validTID(tid) && uint64(tid)>>32 <= math.MaxUint32 {
			if back := storage.TIDFromTime(tm); back != tid {
				t.Fatalf("TIDFromTime(%s.Time() = %v) = %s", tid, tm, back)
			}
		}
		if next := storage.NextTID(tm, tid); next <= tid && tid != math.MaxUint64 {
			t.Fatalf("NextTID(%v, %s) = %s", tm, tid, next)
		}
	})
}
