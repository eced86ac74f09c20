package indicators

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestMinMaxMatchBuiltins: fmin, fmax and fmaxOf give the builtins' (and
// slices.Max's) results bit for bit, signed zeros and infinities
// included, in either order; a NaN gives a NaN (its payload is the
// runtime's, which with GOARCH=wasm is the builtin's, while amd64's
// instructions give another: no value of the pack is ever a NaN).
func TestMinMaxMatchBuiltins(t *testing.T) {
	nan2 := math.Float64frombits(0x7ff8000000000001) // another NaN payload
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1e-300, 1e300, math.Inf(1), math.Inf(-1), math.NaN(), nan2, math.SmallestNonzeroFloat64, -math.MaxFloat64}
	bits := func(x float64) uint64 {
		if math.IsNaN(x) {
			return 1<<64 - 1 // any NaN
		}
		return math.Float64bits(x)
	}
	for _, x := range values {
		for _, y := range values {
			if got, want := fmin(x, y), min(x, y); bits(got) != bits(want) {
				t.Errorf("fmin(%v, %v) = %v (%#x), want %v (%#x)", x, y, got, bits(got), want, bits(want))
			}
			if got, want := fmax(x, y), max(x, y); bits(got) != bits(want) {
				t.Errorf("fmax(%v, %v) = %v (%#x), want %v (%#x)", x, y, got, bits(got), want, bits(want))
			}
			for _, z := range values {
				s := []float64{x, y, z}
				if got, want := fmaxOf(s), slices.Max(s); bits(got) != bits(want) {
					t.Errorf("fmaxOf(%v) = %v (%#x), want %v (%#x)", s, got, bits(got), want, bits(want))
				}
			}
		}
	}
}

// TestSortByDayIsStable: sortByDay gives slices.SortStableFunc's order,
// by counting over a school year and by merging over a wide span.
func TestSortByDayIsStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		span int32
	}{{"year", 320}, {"one day", 1}, {"wide span", 3 * maxCountingSpan}} {
		t.Run(tc.name, func(t *testing.T) {
			for range 200 {
				ev := make([]Event, rng.IntN(120)+1)
				for i := range ev {
					// Mark tells the events apart: equal days keep their order.
					ev[i] = Event{Day: 20000 + rng.Int32N(tc.span), Mark: float64(i)}
				}
				want := slices.Clone(ev)
				slices.SortStableFunc(want, func(a, b Event) int { return int(a.Day - b.Day) })
				sortByDay(ev, nil)
				if !slices.Equal(ev, want) {
					t.Fatalf("got %v\nwant %v", ev, want)
				}
			}
		})
	}
}

// TestBranchFreeHelpers: capped is min(z, 1e300) and keep is an if, bit
// for bit, over signed zeros, infinities, NaNs of either sign, values next
// to 1e300 and subnormals; imin and imax are the builtins over the days
// and offsets they clamp.
func TestBranchFreeHelpers(t *testing.T) {
	negNaN := math.Float64frombits(0xfff8000000000000)
	values := []float64{0, math.Copysign(0, -1), 1, -1, 1e300, math.Nextafter(1e300, 0), math.Nextafter(1e300, math.Inf(1)), -1e300, 1e301,
		math.Inf(1), math.Inf(-1), math.NaN(), negNaN, math.Float64frombits(0x7ff0000000000001), math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 10000 {
		values = append(values, math.Float64frombits(rng.Uint64()))
	}
	for _, z := range values {
		want := z
		if z > 1e300 {
			want = 1e300
		}
		if got := capped(z); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("capped(%v) = %v (%#x), want %v (%#x)", z, got, math.Float64bits(got), want, math.Float64bits(want))
		}
		if got := keep(true, z); math.Float64bits(got) != math.Float64bits(z) {
			t.Fatalf("keep(true, %v) = %v", z, got)
		}
		if got := keep(false, z); math.Float64bits(got) != 0 {
			t.Fatalf("keep(false, %v) = %v (%#x), want +0", z, got, math.Float64bits(got))
		}
	}
	ints := []int{0, 1, -1, 7, -7, 300, -300, 4096, math.MaxInt32, math.MinInt32}
	for _, a := range ints {
		for _, b := range ints {
			if got, want := imin(a, b), min(a, b); got != want {
				t.Errorf("imin(%d, %d) = %d, want %d", a, b, got, want)
			}
			if got, want := imax(a, b), max(a, b); got != want {
				t.Errorf("imax(%d, %d) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestCalendarDays: calendar.days is school(d) day by day, for ranges in
// the table (a slice of it), across its ends and outside it (filled).
func TestCalendarDays(t *testing.T) {
	c := DefaultConfig()
	m := c.NewMemo(1 << 20)
	cal := &m.cal
	hi := cal.lo + int32(len(cal.hd)) - 1
	var sc scratch
	for _, r := range [][2]int32{{cal.lo, hi}, {cal.lo + 100, cal.lo + 400}, {cal.lo - 50, cal.lo + 10}, {hi - 10, hi + 30}, {cal.lo - 900, cal.lo - 800}, {hi, hi}} {
		got := cal.days(&sc, r[0], r[1])
		if len(got) != int(r[1]-r[0]+1) {
			t.Fatalf("days(%d, %d): %d days", r[0], r[1], len(got))
		}
		for d := r[0]; d <= r[1]; d++ {
			if int(got[d-r[0]]) != cal.school(d) {
				t.Fatalf("days(%d, %d)[%d] = %d, school = %d", r[0], r[1], d-r[0], got[d-r[0]], cal.school(d))
			}
		}
	}
	if !cal.haveOnsets || !slices.Equal(cal.onsets, c.driftOnsets(nil, cal)) || len(cal.onsets) == 0 {
		t.Fatalf("a Memo's onsets %v", cal.onsets)
	}
}
