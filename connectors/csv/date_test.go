package csv

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestISODate: the fast yyyy-mm-dd reader agrees with time.Parse on every
// day of the years 0-400 and 1600-2400, and leaves to it what it does not read itself.
func TestISODate(t *testing.T) {
	if patternLayout("yyyy-mm-dd") != isoPatternLayout {
		t.Fatalf("the default date format's layout is %q, not %q", patternLayout("yyyy-mm-dd"), isoPatternLayout)
	}
	for _, years := range [][2]int{{0, 400}, {1600, 2400}} {
		for d := time.Date(years[0], 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < years[1]; d = d.AddDate(0, 0, 1) {
			s := d.Format(time.DateOnly)
			want, err := time.Parse(isoPatternLayout, s)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := isoDate(s)
			if !ok || got != arrow.Date32FromTime(want) {
				t.Fatalf("isoDate(%q) = %d, %v; want %d", s, got, ok, arrow.Date32FromTime(want))
			}
		}
	}
	for _, s := range []string{"2025-02-29", "2024-02-30", "1900-02-29", "2025-13-01", "2025-00-10", "2025-04-31",
		"2025-1-01", " 2025-01-01", "2025/01/01", "2025-01-0x", "+025-01-01", ""} {
		if got, ok := isoDate(s); ok {
			t.Errorf("isoDate(%q) = %d, want it left to time.Parse", s, got)
		}
	}
	// Through the column type: what isoDate leaves, time.Parse decides.
	var v value
	f := defaultFormats()
	for s, want := range map[string]bool{"2000-02-29": true, "2025-02-29": false, " 2025-01-01 ": true, "2025-1-01": false} {
		if ok := colTypes[typeDate32].parse(f, s, &v); ok != want {
			t.Errorf("parse date32 %q: %v, want %v", s, ok, want)
		}
	}
}

// TestFastNumbers: int32, int64 and bool fields read as strconv and the
// general path read them, fast path or not.
func TestFastNumbers(t *testing.T) {
	f := defaultFormats()
	ints := []string{"0", "7", "007", "42", "-3", "+5", " 12 ", "999999999", "1000000000", "2147483647", "2147483648",
		"-2147483648", "999999999999999999", "9223372036854775807", "9223372036854775808", "12a", "", " ", "1_000", "0x10", "٣"}
	for _, s := range ints {
		for _, c := range []struct {
			typ  string
			bits int
		}{{typeInt32, 32}, {typeInt64, 64}} {
			want, err := strconv.ParseInt(strings.TrimSpace(s), 10, c.bits)
			var v value
			ok := colTypes[c.typ].parse(f, s, &v)
			if ok != (err == nil) || (ok && v.I != want) {
				t.Errorf("%s %q: %d, %v; want %d, %v", c.typ, s, v.I, ok, want, err == nil)
			}
		}
	}
	bools := map[string]any{"true": true, "false": false, "TRUE": true, " false ": false, "1": true, "non": false, "yes": true, "vrai": nil, "": nil}
	for s, want := range bools {
		var v value
		ok := colTypes[typeBool].parse(f, s, &v)
		if ok != (want != nil) || (ok && v.B != want.(bool)) {
			t.Errorf("bool %q: %v, %v; want %v", s, v.B, ok, want)
		}
	}
}
