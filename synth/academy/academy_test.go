package academy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/readback"
	"golang.org/x/text/encoding/charmap"
)

func gen(t testing.TB, dir string, students, workers int, formats ...string) *Result {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	res, err := Generate(context.Background(), Options{Dir: dir, Students: students, Seed: 7, Year: 2025, Zone: "C",
		Formats: formats, Profile: DefaultProfile(), Workers: workers, Chunk: 64, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0) // every Parquet batch released, from the caller's allocator
	return res
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	gen(t, a, 500, 1)
	gen(t, b, 500, 5)
	ta, tb := readTree(t, a), readTree(t, b)
	if len(ta) != 39 || len(ta) != len(tb) { // 32, the 2 of format platform and the 5 of format primary
		t.Fatalf("%d and %d files", len(ta), len(tb))
	}
	for name, x := range ta {
		if !bytes.Equal(x, tb[name]) {
			t.Errorf("%s differs between 1 and 5 workers", name)
		}
	}
	// Another seed, other data; choosing formats does not change the data.
	if _, err := Generate(context.Background(), Options{Dir: c, Students: 500, Seed: 8, Year: 2025, Zone: "C",
		Formats: []string{FormatCSV}, Profile: DefaultProfile(), Chunk: 64}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(readTree(t, c)["attendance.csv"], ta["attendance.csv"]) {
		t.Error("seeds 7 and 8 wrote the same attendance")
	}
	d := t.TempDir()
	gen(t, d, 500, 3, FormatCSV)
	for name, x := range readTree(t, d) {
		if !bytes.Equal(x, ta[name]) {
			t.Errorf("%s differs when only csv is written", name)
		}
	}
}

func TestCalendar(t *testing.T) {
	for _, zone := range []string{"A", "B", "C"} {
		c, err := NewCalendar(2025, zone)
		if err != nil {
			t.Fatal(err)
		}
		if c.First != date(2025, time.September, 1) || c.First.Weekday() != time.Monday {
			t.Errorf("%s: first day %s", zone, c.First)
		}
		if c.Last != date(2026, time.July, 3) {
			t.Errorf("%s: last day %s", zone, c.Last)
		}
		winter := map[string]time.Time{"A": date(2026, 2, 7), "B": date(2026, 2, 14), "C": date(2026, 2, 21)}[zone]
		spring := winter.AddDate(0, 0, 56)
		for _, off := range []time.Time{date(2025, 10, 20), date(2025, 11, 11), date(2025, 12, 22), date(2026, 1, 2),
			winter.AddDate(0, 0, 2), winter.AddDate(0, 0, 9), spring.AddDate(0, 0, 2), date(2026, 4, 6),
			date(2026, 5, 1), date(2026, 5, 8), date(2026, 5, 14), date(2026, 5, 15), date(2026, 5, 25), date(2025, 9, 6)} {
			if n := c.HalfDays(off); n != 0 {
				t.Errorf("%s: %s has %d half-days, want none", zone, off.Format(time.DateOnly), n)
			}
		}
		for _, h := range c.Holidays {
			for d := h.First; !d.After(h.Last); d = d.AddDate(0, 0, 1) {
				if c.IsSchoolHalfDay(d, AM) {
					t.Errorf("%s: lessons on %s (%s)", zone, d.Format(time.DateOnly), h.Name)
				}
			}
		}
		if !c.IsSchoolHalfDay(date(2025, 9, 3), AM) || c.IsSchoolHalfDay(date(2025, 9, 3), PM) {
			t.Errorf("%s: Wednesday 3 Sept: morning only", zone)
		}
		if !c.IsSchoolHalfDay(date(2026, 3, 10), PM) { // a Tuesday, no holiday in any zone
			t.Errorf("%s: Tuesday 10 March 2026 afternoon has no lessons", zone)
		}
		for _, s := range c.Slots {
			wd := s.Date.Weekday()
			if wd == time.Saturday || wd == time.Sunday || wd == time.Wednesday && s.Half == PM || c.HolidayOn(s.Date) != "" {
				t.Errorf("%s: slot on %s %s", zone, s.Date.Format(time.DateOnly), s.Half)
			}
		}
	}
	a, _ := NewCalendar(2025, "A")
	c, _ := NewCalendar(2025, "C")
	if !a.IsSchoolHalfDay(date(2026, 2, 24), AM) == !c.IsSchoolHalfDay(date(2026, 2, 24), AM) {
		t.Error("24 Feb 2026: zone C is on holiday, zone A is not")
	}
	if _, err := NewCalendar(2025, "D"); err == nil {
		t.Error("zone D accepted")
	}
}

func readCSV(t *testing.T, path string) (map[string]int, [][]string) {
	t.Helper()
	recs := readback.CSV(t, path)
	col := readback.Columns(recs[0])
	return col, recs[1:]
}

// big is a 20 000-student run shared by the tests on rates and truth.
var bigDir string

func bigRun(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("20 000 students")
	}
	if bigDir == "" {
		dir, err := os.MkdirTemp("", "academy-")
		if err != nil {
			t.Fatal(err)
		}
		gen(t, dir, 20000, 0, FormatCSV, FormatXAPI)
		bigDir = dir
	}
	return bigDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigDir != "" {
		os.RemoveAll(bigDir)
	}
	os.Exit(code)
}

// The DEPP figure: share of student-months with >= 4 unjustified half-days.
func TestRates(t *testing.T) {
	dir := bigRun(t)
	gc, gt := readCSV(t, filepath.Join(dir, "ground_truth.csv"))
	track := map[string]string{}
	counts := map[string]float64{}
	for _, r := range gt {
		track[r[gc["student_id"]]] = r[gc["track"]]
		counts[r[gc["track"]]]++
		counts["outcome:"+r[gc["outcome"]]]++
	}
	ac, att := readCSV(t, filepath.Join(dir, "attendance.csv"))
	months, over := map[string]float64{}, map[string]float64{}
	for _, r := range att {
		u, _ := strconv.Atoi(r[ac["unjustified_half_days"]])
		tr := track[r[ac["student_id"]]]
		months[tr]++
		months["all"]++
		if u >= 4 {
			over[tr]++
			over["all"]++
		}
	}
	p := DefaultProfile()
	for _, tc := range []struct {
		name string
		want float64
	}{{"college", p.Unjustified4.College}, {"lgt", p.Unjustified4.LGT}, {"lp", p.Unjustified4.LP}, {"all", 0.045}} {
		got := over[tc.name] / months[tc.name]
		t.Logf("%s: %.2f %% of student-months with >= 4 unjustified half-days (want %.1f %%)", tc.name, 100*got, 100*tc.want)
		if math.Abs(got-tc.want) > 0.25*tc.want {
			t.Errorf("%s: %.3f, want %.3f ± 25 %%", tc.name, got, tc.want)
		}
	}
	share := counts["lp"] / float64(len(gt))
	if math.Abs(share-p.TrackShare.LP) > 0.02 {
		t.Errorf("lp share %.3f, want %.3f", share, p.TrackShare.LP)
	}
	var wantDrop float64
	for _, tr := range []Track{College, LGT, LP} {
		wantDrop += p.TrackShare.Of(tr) * p.DriftRate.Of(tr) * p.DropoutGivenDrift.Of(tr)
	}
	drop := counts["outcome:dropout"] / float64(len(gt))
	t.Logf("dropouts %.2f %% (want about %.2f %%), transfers %.2f %%", 100*drop, 100*wantDrop, 100*counts["outcome:transfer"]/float64(len(gt)))
	if math.Abs(drop-wantDrop) > 0.3*wantDrop {
		t.Errorf("dropout rate %.4f, want %.4f", drop, wantDrop)
	}
}

func TestGroundTruth(t *testing.T) {
	dir := bigRun(t)
	gc, gt := readCSV(t, filepath.Join(dir, "ground_truth.csv"))
	ac, att := readCSV(t, filepath.Join(dir, "attendance.csv"))
	mc, marks := readCSV(t, filepath.Join(dir, "grades.csv"))
	type monthRow struct {
		month string
		unj   int
	}
	months := map[string][]monthRow{}
	for _, r := range att {
		u, _ := strconv.Atoi(r[ac["unjustified_half_days"]])
		months[r[ac["student_id"]]] = append(months[r[ac["student_id"]]], monthRow{r[ac["month"]], u})
	}
	termSum := map[string]*[3][2]float64{}
	for _, r := range marks {
		if r[mc["status"]] != StatusOK {
			continue
		}
		id := r[mc["student_id"]]
		if termSum[id] == nil {
			termSum[id] = &[3][2]float64{}
		}
		v, _ := strconv.ParseFloat(r[mc["mark"]], 64)
		k := int(r[mc["period"]][1] - '1')
		termSum[id][k][0] += v
		termSum[id][k][1]++
	}
	cal, _ := NewCalendar(2025, "C")
	schoolWeek := map[string]int{}
	for _, s := range cal.Slots {
		schoolWeek[day(s.Date)] = s.Week
	}
	week := func(s string) int { return schoolWeek[s[:10]] }
	perWeek := map[string]map[int]int{}
	f, err := os.Open(filepath.Join(dir, "xapi", "statements.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	for {
		var st struct {
			Actor     struct{ Account struct{ Name string } }
			Timestamp string
		}
		if err := dec.Decode(&st); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if perWeek[st.Actor.Account.Name] == nil {
			perWeek[st.Actor.Account.Name] = map[int]int{}
		}
		perWeek[st.Actor.Account.Name][week(st.Timestamp)]++
	}
	shown, missed := map[string]int{}, map[string]int{}
	var drifters, partial, staysWithSignal, dropouts int
	for _, r := range gt {
		id := r[gc["student_id"]]
		start, end, out, sig := r[gc["drift_start"]], r[gc["drift_end"]], r[gc["outcome"]], r[gc["signals"]]
		ms := months[id]
		over := false
		for _, m := range ms {
			over = over || m.unj >= 4
		}
		if r[gc["drifts"]] != "true" {
			if start != "" || sig != "" {
				t.Errorf("%s: no drift but start %q, signals %q", id, start, sig)
			}
			if over || strings.Contains(r[gc["noise"]], "bad_term") {
				staysWithSignal++
			}
			continue
		}
		drifters++
		if sig == "" {
			t.Errorf("%s drifts with no signal", id)
		}
		if strings.Count(sig, ";") < 2 {
			partial++
		}
		if out == Dropout {
			dropouts++
			if od := r[gc["outcome_date"]]; od <= start || od != end {
				t.Errorf("%s: dropout on %q, drift %q to %q", id, od, start, end)
			}
		}
		for _, s := range strings.Split(sig, ";") {
			ok := false
			switch s {
			case "absences":
				for _, m := range ms {
					ok = ok || m.month >= start[:7] && m.unj >= 4
				}
			case "marks":
				ts := termSum[id]
				if ts != nil && ts[0][1] > 0 {
					t1 := ts[0][0] / ts[0][1]
					for k := 1; k < 3; k++ {
						ok = ok || ts[k][1] > 0 && ts[k][0]/ts[k][1] <= t1-2
					}
				}
			case "platform":
				w0, before, after := week(start), 0, 0
				for wk, n := range perWeek[id] {
					if wk < w0 {
						before += n
					} else if wk > w0 && wk <= w0+4 {
						after += n
					}
				}
				ok = before > 0 && float64(after)/4 <= 0.5*float64(before)/float64(max(1, w0))
			}
			if ok {
				shown[s]++
			} else {
				missed[s]++
			}
		}
	}
	t.Logf("%d drifters, %d dropouts, %d with fewer than 3 signals; %d non-drifters with a month >= 4 unjustified or a bad term; shown %v missed %v",
		drifters, dropouts, partial, staysWithSignal, shown, missed)
	for s, n := range shown {
		if float64(missed[s]) > 0.05*float64(n+missed[s]) {
			t.Errorf("signal %s: %d of %d not found in the data", s, missed[s], n+missed[s])
		}
	}
	if drifters < 200 || partial < drifters/4 || staysWithSignal < 5*drifters {
		t.Errorf("not hard enough: %d drifters, %d with a partial set of signals, %d stayers with a signal", drifters, partial, staysWithSignal)
	}
}

func TestOneRosterIntegrity(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 700, 0, FormatOneRoster)
	ids := map[string]map[string]bool{}
	for _, rf := range rosterFiles {
		col, rows := readCSV(t, filepath.Join(dir, "oneroster", rf.name+".csv"))
		b, _ := os.ReadFile(filepath.Join(dir, "oneroster", rf.name+".csv"))
		if h, _, _ := strings.Cut(string(b), "\n"); h != rf.header {
			t.Errorf("%s: header %q", rf.name, h)
		}
		ids[rf.name] = map[string]bool{}
		for _, r := range rows {
			if ids[rf.name][r[col["sourcedId"]]] {
				t.Errorf("%s: duplicate sourcedId %s", rf.name, r[0])
			}
			ids[rf.name][r[col["sourcedId"]]] = true
		}
	}
	check := func(file, column, target string) {
		col, rows := readCSV(t, filepath.Join(dir, "oneroster", file+".csv"))
		for _, r := range rows {
			for _, v := range strings.Split(r[col[column]], ",") {
				if v != "" && !ids[target][v] {
					t.Errorf("%s.%s = %q: no such %s", file, column, v, target)
					return
				}
			}
		}
	}
	check("enrollments", "userSourcedId", "users")
	check("enrollments", "classSourcedId", "classes")
	check("enrollments", "schoolSourcedId", "orgs")
	check("roles", "userSourcedId", "users")
	check("classes", "courseSourcedId", "courses")
	check("classes", "termSourcedIds", "academicSessions")
	check("courses", "orgSourcedId", "orgs")
	check("lineItems", "classSourcedId", "classes")
	check("lineItems", "categorySourcedId", "categories")
	check("results", "lineItemSourcedId", "lineItems")
	check("results", "studentSourcedId", "users")
	check("users", "primaryOrgSourcedId", "orgs")
	if n := len(ids["users"]); n < 700 {
		t.Errorf("%d users", n)
	}
}

var (
	uuidRE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	durationRE = regexp.MustCompile(`^PT(\d+H)?(\d+M)?(\d+(\.\d+)?S)?$`)
)

func TestXAPIStatements(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 200, 0, FormatXAPI)
	b, err := os.ReadFile(filepath.Join(dir, "xapi", "statements.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 1000 {
		t.Fatalf("%d statements", len(lines))
	}
	seen := map[string]bool{}
	verbs := map[string]int{}
	for i, l := range lines {
		var s struct {
			ID    string
			Actor struct {
				ObjectType string
				Account    *struct{ HomePage, Name string }
			}
			Verb   struct{ ID string }
			Object struct{ ObjectType, ID string }
			Result *struct {
				Score      *struct{ Scaled float64 }
				Success    *bool
				Completion *bool
				Duration   string
			}
			Context   struct{ Registration, Platform string }
			Timestamp string
		}
		d := json.NewDecoder(strings.NewReader(l))
		if err := d.Decode(&s); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		bad := func(why string) { t.Errorf("line %d: %s: %s", i+1, why, l) }
		if !uuidRE.MatchString(s.ID) || seen[s.ID] {
			bad("id")
		}
		seen[s.ID] = true
		if s.Actor.Account == nil || !strings.HasPrefix(s.Actor.Account.HomePage, "https://") || s.Actor.Account.Name == "" {
			bad("actor account")
		}
		if !strings.HasPrefix(s.Verb.ID, "http://adlnet.gov/expapi/verbs/") {
			bad("verb")
		}
		verbs[s.Verb.ID]++
		if s.Object.ObjectType != "Activity" || !strings.HasPrefix(s.Object.ID, "https://") {
			bad("object")
		}
		if _, err := time.Parse(time.RFC3339, s.Timestamp); err != nil {
			bad("timestamp")
		}
		if !uuidRE.MatchString(s.Context.Registration) || s.Context.Platform == "" {
			bad("context")
		}
		if r := s.Result; r != nil {
			if r.Score == nil || r.Score.Scaled < -1 || r.Score.Scaled > 1 || !durationRE.MatchString(r.Duration) || r.Completion == nil {
				bad("result")
			}
		}
	}
	if len(verbs) != 3 {
		t.Errorf("verbs %v", verbs)
	}
}

func TestPronoteExport(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 300, 0, FormatPronote)
	for _, f := range []struct{ name, header string }{
		{"notes.csv", "Identifiant;Nom;Prénom;Classe;Matière;Période;Date;Note;Barème;Coefficient"},
		{"absences.csv", "Identifiant;Nom;Prénom;Classe;Date;Demi-journée;Justifiée;Motif;Saisie le"},
	} {
		raw, err := os.ReadFile(filepath.Join(dir, "pronote", f.name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("é")) {
			t.Errorf("%s: UTF-8 é found, want Windows-1252", f.name)
		}
		b, err := charmap.Windows1252.NewDecoder().Bytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n")
		if lines[0] != f.header {
			t.Errorf("%s: header %q", f.name, lines[0])
		}
		dateRE := regexp.MustCompile(`^\d\d/\d\d/20\d\d`)
		markers := map[string]int{}
		for _, l := range lines[1:] {
			cols := strings.Split(l, ";")
			if len(cols) != strings.Count(f.header, ";")+1 {
				t.Fatalf("%s: %q", f.name, l)
			}
			if f.name == "notes.csv" {
				if !dateRE.MatchString(cols[6]) {
					t.Errorf("date %q", cols[6])
				}
				switch n := cols[7]; {
				case n == "Abs" || n == "Disp" || n == "N.Not":
					markers[n]++
				case strings.Contains(n, "."):
					t.Errorf("decimal point in %q", n)
				case strings.Contains(n, ","):
					markers["comma"]++
				}
				markers["/"+cols[8]]++
			} else if !dateRE.MatchString(cols[4]) || (cols[5] != "Matin" && cols[5] != "Après-midi") {
				t.Errorf("absence %q", l)
			}
		}
		if f.name == "notes.csv" {
			for _, m := range []string{"Abs", "Disp", "N.Not", "comma", "/10", "/20", "/40"} {
				if markers[m] == 0 {
					t.Errorf("notes.csv: no %s", m)
				}
			}
		}
	}
}

func TestProfileFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.toml")
	os.WriteFile(p, []byte("sick_week_rate = 0.5\n[unjustified_4plus_monthly]\nlp = 0.2\n"), 0o644)
	got, err := LoadProfile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.SickWeekRate != 0.5 || got.Unjustified4.LP != 0.2 || got.Unjustified4.College != DefaultProfile().Unjustified4.College {
		t.Errorf("profile %+v", got)
	}
	os.WriteFile(p, []byte("sick_weeks = 0.5\n"), 0o644)
	if _, err := LoadProfile(p); err == nil {
		t.Error("unknown key accepted")
	}
	j := filepath.Join(dir, "p.json")
	os.WriteFile(j, []byte(`{"transfer_rate": 2}`), 0o644)
	if _, err := LoadProfile(j); err == nil {
		t.Error("rate 2 accepted")
	}
}

func BenchmarkGenerate(b *testing.B) {
	for _, formats := range [][]string{{FormatCSV}, AllFormats} {
		b.Run(strings.Join(formats, "+"), func(b *testing.B) {
			const n = 2000
			dir := b.TempDir()
			b.ResetTimer()
			for range b.N {
				gen(b, dir, n, 0, formats...)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "students/s")
		})
	}
}
