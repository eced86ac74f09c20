package pipelines_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/examples/rules/platform_health/health"
	"github.com/vigie-edu/vigie/internal/kafkatest"
	"github.com/vigie-edu/vigie/synth/academy"
)

// phAcademy generates 3 schools' platform logs over days days, with the
// calendar, and returns the folder and the ground truth.
func phAcademy(t *testing.T, seed uint64, days int) (string, []academy.PlatformIncident) {
	t.Helper()
	dir := t.TempDir()
	if _, err := academy.Generate(context.Background(), academy.Options{Dir: dir, Students: 1800, Schools: 3, Seed: seed, Year: 2025, Zone: "C",
		Formats: []string{academy.FormatCSV, academy.FormatPlatform}, Profile: academy.DefaultProfile(), PlatformDays: days}); err != nil {
		t.Fatal(err)
	}
	cal, err := academy.NewCalendar(2025, "C")
	if err != nil {
		t.Fatal(err)
	}
	lay, err := academy.NewLayout(academy.DefaultProfile(), seed, 1800, 3)
	if err != nil {
		t.Fatal(err)
	}
	return dir, academy.NewPlatformLogs(cal, lay, seed, days).Incidents
}

// phPipeline copies pipeline name for the academy in gen, with the rule
// built.
func phPipeline(t *testing.T, name, gen string, edit func(string) string) (toml, dir string) {
	t.Helper()
	toml, dir = ewPipeline(t, name, "platform_health")
	b, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Abs("..")
	s := strings.ReplaceAll(string(b), filepath.ToSlash(examples)+"/../academy", filepath.ToSlash(gen))
	if edit != nil {
		s = edit(s)
	}
	if err := os.WriteFile(toml, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return toml, dir
}

// phLogs reads platform_logs.csv and calendar.csv of gen: the rows of
// each platform, as the rule sees them, and the raw lines.
func phLogs(t *testing.T, gen string) (map[string][]health.Row, [][]string) {
	t.Helper()
	holiday := map[string]bool{}
	for _, r := range csvRows(t, filepath.Join(gen, "calendar.csv"))[1:] {
		holiday[r[0]] = r[3] != ""
	}
	rows := csvRows(t, filepath.Join(gen, "platform_logs.csv"))
	out := map[string][]health.Row{}
	for _, r := range rows[1:] {
		m, err := time.Parse(time.RFC3339, r[0])
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseInt(r[4], 10, 64)
		e, _ := strconv.ParseInt(r[7], 10, 64)
		p, _ := strconv.ParseFloat(r[9], 64)
		out[r[2]] = append(out[r[2]], health.Row{Minute: m.Unix(), School: r[3], Requests: n, S5xx: e, P95: p, Holiday: holiday[r[1]]})
	}
	return out, rows
}

func csvRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(bufio.NewReader(f)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// history formats incidents as the rule's incidents column.
func history(incs []health.Incident) string {
	stamp := func(t int64) string { return time.Unix(t, 0).UTC().Format("20060102T1504Z") }
	var h []string
	for _, x := range incs {
		cleared := ""
		if x.Cleared != 0 {
			cleared = stamp(x.Cleared)
		}
		h = append(h, x.ID+":"+x.Code+":"+x.School+":"+stamp(x.Opened)+":"+cleared)
	}
	return strings.Join(h, ";")
}

// TestPlatformHealth runs platform_health.toml in batch over three weeks
// of three schools' logs: each platform's incidents (the rule, in
// WebAssembly) are those package health finds natively over the same
// file, history and reasons; the incidents open at the end are announced
// opened; and the injected incidents are found.
func TestPlatformHealth(t *testing.T) {
	gen, truth := phAcademy(t, 3, 21)
	if len(truth) == 0 {
		t.Fatal("seed 3 injects no incident in 21 days")
	}
	toml, dir := phPipeline(t, "platform_health.toml", gen, nil)
	pipelinetest.Run(t, toml)
	h, rows := readAlerts(t, filepath.Join(dir, "out", "platform_health_incidents.csv"))
	logs, _ := phLogs(t, gen)
	if len(rows) != len(academy.Platforms) {
		t.Fatalf("%d rows, want one per platform (%d)", len(rows), len(academy.Platforms))
	}
	var all []health.Incident
	var names []string
	open := map[string]bool{}
	for _, r := range rows {
		p := r[h["platform"]]
		names = append(names, p)
		want := health.Detect(health.Default, p, logs[p])
		all = append(all, want...)
		if got := r[h["incidents"]]; got != history(want) {
			t.Errorf("%s: the rule's incidents\n %s\nnative\n %s", p, got, history(want))
		}
		var reasons []string
		for _, x := range want {
			if x.Cleared == 0 {
				reasons = append(reasons, x.Reason)
				open[x.ID] = true
			}
		}
		if got := r[h["reason"]]; got != strings.Join(reasons, "; ") {
			t.Errorf("%s: reason %q, want %q", p, got, strings.Join(reasons, "; "))
		}
		t.Logf("%s: %s", p, r[h["incidents"]])
	}
	ha, changes := readAlerts(t, filepath.Join(dir, "out", "platform_health_open.csv"))
	for _, c := range changes {
		if c[ha["change"]] != "opened" || !open[c[ha["alert_id"]]] {
			t.Errorf("announced %s %s, not an incident open at the end", c[ha["change"]], c[ha["alert_id"]])
		}
		delete(open, c[ha["alert_id"]])
	}
	if len(open) > 0 {
		t.Errorf("open incidents not announced: %v", open)
	}
	var tr []health.Truth
	for _, in := range truth {
		tr = append(tr, health.Truth{ID: in.ID, Kind: in.Kind, Platform: in.Platform, School: in.School, Start: in.Start.Unix(), End: in.End.Unix()})
	}
	sc := health.Compare(tr, all, names, 21*86400)
	t.Logf("%d injected, %d detected:\n%s", len(tr), len(all), sc)
	if sc.OutagesFound+sc.PartialFound < len(tr) {
		t.Errorf("found %d of the %d injected incidents", sc.OutagesFound+sc.PartialFound, len(tr))
	}
}

// phChange is one line of out/platform_health_changes.jsonl.
type phChange struct {
	AlertID   string `json:"alert_id"`
	Change    string `json:"change"`
	Platform  string `json:"platform"`
	Code      string `json:"code"`
	Reason    string `json:"reason"`
	EventTime string `json:"event_time"`
	Seq       int64  `json:"arrival_seq"`
}

// TestPlatformHealthLive runs platform_health_live.toml in continuous mode
// (a Kafka source, kfake, emit = "per_row") over the logs around an
// injected outage, published one message per row: the outage is announced
// opened within minutes of its start, then cleared; every incident the
// batch pipeline finds over the same rows is announced opened, those it
// closed are announced cleared, with the same ids, and nothing else is
// announced.
func TestPlatformHealthLive(t *testing.T) {
	gen, truth := phAcademy(t, 3, 21)
	var out *academy.PlatformIncident
	for i, in := range truth {
		if in.Kind == academy.IncidentOutage {
			out = &truth[i]
			break
		}
	}
	if out == nil {
		t.Fatal("seed 3 injects no outage in 21 days")
	}
	// The rows from 3 hours before the outage (VIGIE_PH_LIVE_HOURS: more,
	// to measure the cost of the live mode) to 1 hour after it.
	before := 3
	if h := os.Getenv("VIGIE_PH_LIVE_HOURS"); h != "" {
		var err error
		if before, err = strconv.Atoi(h); err != nil {
			t.Fatal(err)
		}
	}
	from, to := out.Start.Add(-time.Duration(before)*time.Hour), out.End.Add(time.Hour)
	_, lines := phLogs(t, gen)
	slice := t.TempDir()
	var kept [][]string
	for _, r := range lines[1:] {
		m, _ := time.Parse(time.RFC3339, r[0])
		if !m.Before(from) && m.Before(to) {
			kept = append(kept, r)
		}
	}
	f, err := os.Create(filepath.Join(slice, "platform_logs.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(lines[0])
	w.WriteAll(kept)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(gen, "calendar.csv"), filepath.Join(slice, "calendar.csv"))

	// Batch over the slice.
	toml, dir := phPipeline(t, "platform_health.toml", slice, nil)
	pipelinetest.Run(t, toml)
	h, rows := readAlerts(t, filepath.Join(dir, "out", "platform_health_incidents.csv"))
	batch := map[string]string{} // id -> "opened" or "cleared"
	for _, r := range rows {
		for item := range strings.SplitSeq(r[h["incidents"]], ";") {
			if item == "" {
				continue
			}
			p := strings.Split(item, ":")
			batch[p[0]] = "opened"
			if p[4] != "" {
				batch[p[0]] = "cleared"
			}
		}
	}
	t.Logf("batch: %v", batch)

	// Live over the same rows, from Kafka.
	c := kafkatest.Start(t, kafkatest.Config{Topics: map[string]int32{"platform_logs": 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod := c.Client(t)
	var recs []*kgo.Record
	for _, r := range kept {
		v := map[string]any{"minute": r[0], "date": r[1], "platform": r[2], "school_id": r[3]}
		for i, k := range lines[0][4:] {
			n, _ := strconv.ParseInt(r[4+i], 10, 64)
			v[k] = n
		}
		b, _ := json.Marshal(v)
		recs = append(recs, &kgo.Record{Topic: "platform_logs", Value: b})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	live, liveDir := phPipeline(t, "platform_health_live.toml", slice, func(s string) string {
		return strings.Replace(s, `brokers = ["localhost:9092"]`, "brokers = "+c.BrokersTOML(), 1)
	})
	start := time.Now()
	pipelinetest.Run(t, live)
	t.Logf("live run: %d rows (%d platforms, 3 schools, %s) in %s", len(kept), len(academy.Platforms), to.Sub(from), time.Since(start).Round(time.Millisecond))
	changes := readPHChanges(t, filepath.Join(liveDir, "out", "platform_health_changes.jsonl"))
	last := map[string]string{}
	var outageAt time.Time
	for i, ch := range changes {
		t.Logf("%s %s %s at %s: %s", ch.Change, ch.AlertID, ch.Code, ch.EventTime, ch.Reason)
		if i > 0 && ch.Seq < changes[i-1].Seq {
			t.Errorf("change %d out of arrival order", i)
		}
		switch prev := last[ch.AlertID]; {
		case prev == "" && ch.Change != "opened", prev == "opened" && ch.Change != "cleared", prev == "cleared":
			t.Errorf("%s: %q after %q", ch.AlertID, ch.Change, prev)
		}
		last[ch.AlertID] = ch.Change
		if ch.Change == "opened" && ch.Platform == out.Platform && (ch.Code == "OUTAGE" || ch.Code == "ERRORS") && outageAt.IsZero() {
			outageAt, _ = time.Parse(time.RFC3339, strings.Replace(ch.EventTime, " ", "T", 1))
		}
	}
	if !mapsEqual(last, batch) {
		t.Errorf("live changes end in %v, batch incidents %v", last, batch)
	}
	if outageAt.IsZero() {
		t.Fatalf("outage %s of %s at %s not announced", out.ID, out.Platform, out.Start)
	}
	if d := outageAt.Sub(out.Start); d < 0 || d > 5*time.Minute {
		t.Errorf("outage %s announced %s after its start, want within 5 min", out.ID, d)
	}
}

func readPHChanges(t *testing.T, path string) []phChange {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []phChange
	dec := json.NewDecoder(f)
	for {
		var c phChange
		if err := dec.Decode(&c); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
