package academy

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strconv"
	"testing"
	"time"
)

func genPlatform(t *testing.T, dir string, seed uint64, days int, formats ...string) {
	t.Helper()
	if _, err := Generate(context.Background(), Options{Dir: dir, Students: 1800, Schools: 3, Seed: seed, Year: 2025, Zone: "C",
		Formats: formats, Profile: DefaultProfile(), PlatformDays: days}); err != nil {
		t.Fatal(err)
	}
}

// TestPlatformLogs: the logs are in minute order, deterministic, leave
// the other files unchanged, and show the injected incidents: during an
// outage most requests are 5xx, during a network cut the school sends
// nothing, and outside incidents 5xx are rare.
func TestPlatformLogs(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	genPlatform(t, a, 2, 28, FormatCSV, FormatPlatform)
	genPlatform(t, b, 2, 28, FormatCSV, FormatPlatform)
	genPlatform(t, c, 2, 28, FormatCSV)
	ta, tb, tc := readTree(t, a), readTree(t, b), readTree(t, c)
	for name, body := range ta {
		if !bytes.Equal(body, tb[name]) {
			t.Errorf("%s differs between two runs", name)
		}
	}
	for name, body := range tc {
		if !bytes.Equal(body, ta[name]) {
			t.Errorf("%s differs when platform logs are generated too", name)
		}
	}
	truth, err := csv.NewReader(bytes.NewReader(ta["platform_incidents.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(ta["platform_logs.csv"])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(truth) < 4 {
		t.Fatalf("%d incidents in 4 weeks", len(truth)-1)
	}
	type span struct {
		kind, platform, school string
		from, to               string
	}
	var incs []span
	kinds := map[string]bool{}
	for _, r := range truth[1:] {
		incs = append(incs, span{r[1], r[2], r[3], r[4], r[5]})
		kinds[r[1]] = true
	}
	t.Logf("%d rows, %d incidents (%v)", len(rows)-1, len(incs), kinds)
	if len(kinds) != 4 {
		t.Fatalf("seed 2 injects %v in 4 weeks, want the 4 kinds", kinds)
	}
	var p95 [2]float64 // mean p95 outside incidents, during slowdowns
	var np95 [2]int
	var req, e5 [2]int             // outside, inside outages
	schoolRows := map[string]int{} // network cut → rows of the school during it
	for i, r := range rows[1:] {
		if i > 0 && r[0] < rows[i][0] {
			t.Fatalf("row %d at %s after %s", i+1, r[0], rows[i][0])
		}
		n, _ := strconv.Atoi(r[4])
		x, _ := strconv.Atoi(r[7])
		if n <= 0 {
			t.Fatalf("row %d: %d requests", i+1, n)
		}
		in := 0
		for _, s := range incs {
			if r[0] < s.from || r[0] >= s.to {
				continue
			}
			switch {
			case s.kind == IncidentOutage && s.platform == r[2]:
				in = 1
			case s.kind == IncidentNetwork && s.school == r[3]:
				schoolRows[s.from+s.school]++
			case s.kind == IncidentSlowdown && s.platform == r[2]:
				in = 2
			}
		}
		lat, _ := strconv.ParseFloat(r[9], 64)
		if in == 2 {
			p95[1] += lat
			np95[1]++
			continue
		}
		if in == 0 && slices.ContainsFunc(incs, func(s span) bool { return s.platform == r[2] && r[0] >= s.from && r[0] < s.to }) {
			continue // another incident of the platform
		}
		req[in] += n
		e5[in] += x
		if in == 0 && r[2] == "ent" {
			p95[0] += lat
			np95[0]++
		}
	}
	if np95[1] == 0 || p95[1]/float64(np95[1]) < 2*p95[0]/float64(np95[0]) {
		t.Errorf("mean p95 during slowdowns %.0f ms (%d rows), outside %.0f ms", p95[1]/float64(np95[1]), np95[1], p95[0]/float64(np95[0]))
	}
	if share := float64(e5[0]) / float64(req[0]); share > 0.005 {
		t.Errorf("5xx outside incidents: %.4f of requests", share)
	}
	if share := float64(e5[1]) / float64(req[1]); share < 0.85 {
		t.Errorf("5xx during outages: %.3f of requests, want >= 0.85", share)
	}
	for k, n := range schoolRows {
		t.Errorf("network cut %s: %d rows of the school during it", k, n)
	}
	if !bytes.Contains(ta["platform_incidents.csv"], []byte(",network,all,")) {
		t.Error("no network cut")
	}
	// Times are UTC minutes, dates local: 00:30 in Paris is 22:30 UTC the
	// day before in September.
	m, _ := time.Parse(time.RFC3339, rows[1][0])
	if rows[1][1] != "2025-09-01" || m.Format("15:04") != "22:00" {
		t.Errorf("first row at %s (local day %s), want 22:00 UTC of the day before 2025-09-01", rows[1][0], rows[1][1])
	}
}
