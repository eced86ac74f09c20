package health

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/synth/academy"
)

// term generates the platform logs of the first term for seed (20
// schools) and returns the detections of every platform with the ground
// truth and the span.
func term(t *testing.T, cfg Config, seed uint64) ([]Incident, []Truth, []string, int64) {
	t.Helper()
	cal, err := academy.NewCalendar(2025, "C")
	if err != nil {
		t.Fatal(err)
	}
	lay, err := academy.NewLayout(academy.DefaultProfile(), seed, 12000, 20)
	if err != nil {
		t.Fatal(err)
	}
	logs := academy.NewPlatformLogs(cal, lay, seed, 0)
	var det []Incident
	var names []string
	for pi, pl := range academy.Platforms {
		names = append(names, pl.ID)
		var rows []Row
		holiday := map[string]bool{}
		err := logs.EachOf(pi, func(r *academy.PlatformRow) error {
			h, ok := holiday[r.Date]
			if !ok {
				d, _ := time.Parse(time.DateOnly, r.Date)
				h = cal.HolidayOn(d) != ""
				holiday[r.Date] = h
			}
			rows = append(rows, Row{Minute: r.Minute.Unix(), School: r.School, Requests: int64(r.Requests), S5xx: int64(r.S5xx), P95: r.LatencyP95, Holiday: h})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		det = append(det, Detect(cfg, pl.ID, rows)...)
	}
	var truth []Truth
	for _, in := range logs.Incidents {
		truth = append(truth, Truth{ID: in.ID, Kind: in.Kind, Platform: in.Platform, School: in.School, Start: in.Start.Unix(), End: in.End.Unix()})
	}
	return det, truth, names, int64(logs.Days) * 86400
}

// TestTermFigures measures the detection against the generator's ground
// truth over a simulated first term (13 weeks, 3 platforms, 20 schools):
// recall of outages and of partial incidents, detection delays, false
// alarms per platform per month. The parameters were tuned on seed 1;
// the targets of issue 19 are asserted on the held-out seeds (2, 3, 4 by
// default; VIGIE_PH_SEEDS=1,5,6 picks others):
//
//	go test ./examples/rules/platform_health/health -run TestTermFigures -v
func TestTermFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("generates three terms of platform logs")
	}
	seeds := []uint64{2, 3, 4}
	if s := os.Getenv("VIGIE_PH_SEEDS"); s != "" {
		seeds = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, n)
		}
	}
	var allTruth []Truth
	var allDet []Incident
	var span int64
	var names []string
	for _, seed := range seeds {
		det, truth, ns, sp := term(t, Default, seed)
		sc := Compare(truth, det, ns, sp)
		t.Logf("seed %d: %d incidents injected, %d detected\n%s", seed, len(truth), len(det), sc)
		// Pool the seeds: platforms of different seeds are different
		// platforms for the false alarm count.
		for _, g := range truth {
			if g.Platform != "all" {
				g.Platform = fmt.Sprintf("%s#%d", g.Platform, seed)
			}
			g.School = fmt.Sprintf("%s#%d", g.School, seed)
			allTruth = append(allTruth, g)
		}
		for _, x := range det {
			x.Platform = fmt.Sprintf("%s#%d", x.Platform, seed)
			if x.School != "" {
				x.School = fmt.Sprintf("%s#%d", x.School, seed)
			}
			allDet = append(allDet, x)
		}
		for _, n := range ns {
			names = append(names, fmt.Sprintf("%s#%d", n, seed))
		}
		span = sp
	}
	sc := Compare(allTruth, allDet, names, span)
	t.Logf("seeds %v pooled:\n%s", seeds, sc)
	if r := ratioInt(sc.OutagesFound, sc.Outages); r < 0.95 {
		t.Errorf("outage recall %.3f, want >= 0.95", r)
	}
	if r := ratioInt(sc.PartialFound, sc.Partial); r < 0.8 {
		t.Errorf("partial recall %.3f, want >= 0.8", r)
	}
	if m := Quantile(sc.OutageDelays, 0.5); !(m <= 10) {
		t.Errorf("median outage delay %.1f min, want <= 10", m)
	}
	if f := sc.FalsePerPlatformMonth(); f > 1 {
		t.Errorf("%.2f false alarms per platform per month, want <= 1", f)
	}
}

// TestDetectOutage: a platform whose requests all fail from 10:00 opens an
// OUTAGE when its first failing minute has ended and clears it when the
// short window is back under half the threshold; rows of the newest
// minute are not read.
func TestDetectOutage(t *testing.T) {
	t0 := time.Date(2025, 9, 16, 6, 0, 0, 0, time.UTC).Unix() // 08:00 in Paris
	var rows []Row
	for m := range 240 {
		for _, s := range []string{"A", "B"} {
			r := Row{Minute: t0 + int64(m)*60, School: s, Requests: 40, P95: 400}
			if m >= 120 && m < 150 {
				r.S5xx = 38
			}
			rows = append(rows, r)
		}
	}
	got := Detect(Default, "ent", rows)
	if len(got) != 1 {
		t.Fatalf("%d incidents, want 1: %+v", len(got), got)
	}
	in := got[0]
	start := t0 + 120*60
	if in.Code != "OUTAGE" || in.Opened != start+60 || in.School != "" {
		t.Errorf("incident %+v: want OUTAGE opened at %s", in, hm(start+60))
	}
	// The 3-min window at 08:31 still holds a failing minute out of three
	// (32 %): quiet from the minute ending at 08:33.
	if in.Cleared != start+33*60 {
		t.Errorf("cleared at %s, want %s", hm(in.Cleared), hm(start+33*60))
	}
	if in.Reason != "outage: 5xx rate 95 % in the last minute, 32 % over 3 min on ent, usual not known yet (76 of 240 requests)" || in.ID != "ph-ent-OUTAGE-20250916T0801Z" {
		t.Errorf("id %q reason %q", in.ID, in.Reason)
	}
	// Cut at the minute the outage starts: the newest minute is not read.
	if got := Detect(Default, "ent", rows[:2*121]); len(got) != 0 {
		t.Errorf("incident from an incomplete minute: %+v", got)
	}
}

// TestPrefixes is what emit = "per_row" relies on: the incidents found
// over any prefix of the rows, cut anywhere (in the middle of a minute
// too), are those found over all the rows as far as the prefix's complete
// minutes go: the same ids, opened at the same minute, cleared at the
// same minute or not yet.
func TestPrefixes(t *testing.T) {
	cal, err := academy.NewCalendar(2025, "C")
	if err != nil {
		t.Fatal(err)
	}
	lay, err := academy.NewLayout(academy.DefaultProfile(), 2, 1800, 3)
	if err != nil {
		t.Fatal(err)
	}
	logs := academy.NewPlatformLogs(cal, lay, 2, 12)
	var rows []Row
	if err := logs.EachOf(0, func(r *academy.PlatformRow) error {
		rows = append(rows, Row{Minute: r.Minute.Unix(), School: r.School, Requests: int64(r.Requests), S5xx: int64(r.S5xx), P95: r.LatencyP95})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	full := Detect(Default, "ent", rows)
	if len(full) == 0 {
		t.Fatal("no incident in 12 days of seed 2")
	}
	byID := map[string]Incident{}
	for _, x := range full {
		byID[x.ID] = x
		t.Logf("%s %s", x.ID, x.Reason)
	}
	// Cuts every 97 rows from the fifth day: with 3 schools, most fall in
	// the middle of a minute.
	checked := 0
	for cut := 5 * 1440 * 3; cut < len(rows); cut += 97 {
		if rows[cut-1].Minute == rows[cut].Minute {
			checked++
		}
		upTo := rows[cut-1].Minute // complete minutes: before this one
		got := Detect(Default, "ent", rows[:cut])
		seen := map[string]bool{}
		for _, x := range got {
			seen[x.ID] = true
			w, ok := byID[x.ID]
			switch {
			case !ok:
				t.Fatalf("cut at row %d (%s): %s %q not found over all rows", cut, hm(upTo), x.ID, x.Reason)
			case x.Opened != w.Opened || x.Code != w.Code || x.Reason != w.Reason:
				t.Fatalf("cut at row %d: %+v, over all rows %+v", cut, x, w)
			case x.Cleared != 0 && x.Cleared != w.Cleared, x.Cleared == 0 && w.Cleared != 0 && w.Cleared+int64(Default.Quiet-1)*60 <= upTo:
				t.Fatalf("cut at row %d (%s): %s cleared %d, over all rows %d", cut, hm(upTo), x.ID, x.Cleared, w.Cleared)
			}
		}
		for _, w := range full {
			if w.Opened <= upTo && !seen[w.ID] {
				t.Fatalf("cut at row %d (%s): %s, opened at %s, not found", cut, hm(upTo), w.ID, hm(w.Opened))
			}
		}
	}
	if checked < 100 {
		t.Fatalf("%d cuts in the middle of a minute", checked)
	}
}
