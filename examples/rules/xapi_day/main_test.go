package main

import (
	"testing"
	"time"
)

func TestLocalDay(t *testing.T) {
	for _, c := range []struct {
		utc, day string
	}{
		{"2025-09-04T22:30:00Z", "2025-09-05"}, // summer: 00:30 in Paris
		{"2025-09-04T21:30:00Z", "2025-09-04"},
		{"2025-12-04T22:30:00Z", "2025-12-04"}, // winter: 23:30
		{"2025-12-04T23:30:00Z", "2025-12-05"},
		{"2026-03-29T00:30:00Z", "2026-03-29"}, // before the change at 01:00 UTC
		{"2026-03-29T22:30:00Z", "2026-03-30"}, // after it
	} {
		ts, err := time.Parse(time.RFC3339, c.utc)
		if err != nil {
			t.Fatal(err)
		}
		got := time.Unix(int64(LocalDay(ts.UnixMicro(), 3600, true))*86400, 0).UTC().Format("2006-01-02")
		if got != c.day {
			t.Errorf("%s: %s, want %s", c.utc, got, c.day)
		}
	}
}
