package csv

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestISODate: the fast yyyy-mm-dd reader agrees with time.Parse on every
// day from 1600 to 2400, and leaves to it what it does not read itself.
func TestISODate(t *testing.T) {
	for d := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2400; d = d.AddDate(0, 0, 1) {
		s := d.Format(time.DateOnly)
		got, ok := isoDate(s)
		if !ok || got != arrow.Date32FromTime(d) {
			t.Fatalf("isoDate(%q) = %d, %v; want %d", s, got, ok, arrow.Date32FromTime(d))
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
