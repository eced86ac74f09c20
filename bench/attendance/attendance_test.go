package main

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGenerate: the file has the header, rows rows of the documented
// shape, student ids cycling, one day per pass over the students, and is
// the same on every run.
func TestGenerate(t *testing.T) {
	var a, b bytes.Buffer
	if err := generate(&a, 2500, 1000); err != nil {
		t.Fatal(err)
	}
	if err := generate(&b, 2500, 1000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two runs differ")
	}
	recs, err := csv.NewReader(bytes.NewReader(a.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[0], ","); got+"\n" != header {
		t.Fatalf("header %q", got)
	}
	if len(recs) != 2501 {
		t.Fatalf("%d rows, want 2500", len(recs)-1)
	}
	absent := 0
	for i, r := range recs[1:] {
		if want := "S" + strings.Repeat("0", 7-len(strconv.Itoa(i%1000))) + strconv.Itoa(i%1000); r[0] != want {
			t.Fatalf("row %d: student %q, want %q", i, r[0], want)
		}
		if want := firstDay.AddDate(0, 0, i/1000).Format(time.DateOnly); r[1] != want {
			t.Fatalf("row %d: day %q, want %q", i, r[1], want)
		}
		half, err1 := strconv.Atoi(r[2])
		abs, err2 := strconv.Atoi(r[3])
		just, err3 := strconv.ParseBool(r[4])
		if err1 != nil || err2 != nil || err3 != nil || half < 1 || half > 2 || abs < 0 || abs > half || (just && abs == 0) {
			t.Fatalf("row %d: %q", i, r)
		}
		if abs > 0 {
			absent++
		}
	}
	if absent < 100 || absent > 750 {
		t.Errorf("%d rows of 2500 with absences, expected about 15 %%", absent)
	}
	if per := float64(a.Len()) / 2500; per < 28 || per > 32 {
		t.Errorf("%.1f bytes per row, expected about 30 (295 MB for 10M rows)", per)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3}, 3},
		{[]time.Duration{5, 1, 3}, 3},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2, rounded down
		{[]time.Duration{10, 20}, 15},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
