package pipelines_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
	"github.com/vigie-edu/vigie/synth/academy"
)

// resourcesPipeline copies resources.toml to a test folder with the
// steering rule built, and generates an academy's teacher absences and
// écoles there.
func resourcesPipeline(t *testing.T) (toml, dir string) {
	t.Helper()
	toml = sandbox(t, "resources.toml")
	dir = filepath.Dir(toml)
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "rules", "steering"))
	b, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"../rules/steering/steering.wasm"`, `"`+filepath.ToSlash(wasm)+`"`, 1)
	if err := os.WriteFile(toml, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	if _, err := academy.Generate(context.Background(), academy.Options{Dir: filepath.Join(dir, "academy"), Students: 6000, Seed: 1, Year: 2025, Zone: "C",
		Formats: []string{academy.FormatStaff, academy.FormatPrimary}, Profile: academy.DefaultProfile(), Mem: mem}); err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	return toml, dir
}

// TestResources runs resources.toml over a generated academy and checks
// every table against a recomputation from the generated files: the
// unreplaced and absent hours and the teachers absent of every school and
// week (teacher_absences.csv), the écoles' movements per school week
// (enrolments.csv, calendar.csv), and the schools flagged, with their
// reasons, by the rule's definition applied to the recomputed enrolments
// and peaks. Every école whose projection missed an event (the ground
// truth, primary_truth.csv) must be flagged.
func TestResources(t *testing.T) {
	toml, dir := resourcesPipeline(t)
	pipelinetest.Run(t, toml)

	type cell struct {
		unrep, hours int
		teachers     map[string]bool
	}
	want := map[string]*cell{}
	in := readback.CSV(t, filepath.Join(dir, "academy", "teacher_absences.csv"))
	ih := readback.Columns(in[0])
	for _, r := range in[1:] {
		d, err := time.Parse(time.DateOnly, r[ih["date"]])
		if err != nil {
			t.Fatal(err)
		}
		for d.Weekday() != time.Monday {
			d = d.AddDate(0, 0, -1)
		}
		k := r[ih["school_id"]] + "|" + d.Format(time.DateOnly)
		c := want[k]
		if c == nil {
			c = &cell{teachers: map[string]bool{}}
			want[k] = c
		}
		u, _ := strconv.Atoi(r[ih["unreplaced_hours"]])
		h, _ := strconv.Atoi(r[ih["hours"]])
		c.unrep += u
		c.hours += h
		c.teachers[r[ih["teacher_id"]]] = true
	}
	out := readback.CSV(t, filepath.Join(dir, "out", "resources_school_week.csv"))
	oh := readback.Columns(out[0])
	if len(out)-1 != len(want) {
		t.Fatalf("%d school-weeks, want %d", len(out)-1, len(want))
	}
	for _, r := range out[1:] {
		k := r[oh["school_id"]] + "|" + r[oh["window_start"]]
		w := want[k]
		if w == nil {
			t.Fatalf("unexpected school-week %s", k)
		}
		for col, v := range map[string]string{"unreplaced_hours": fmt.Sprint(w.unrep), "absent_hours": fmt.Sprint(w.hours), "teachers_absent": fmt.Sprint(len(w.teachers))} {
			if g, err := strconv.ParseFloat(r[oh[col]], 64); err != nil || strconv.FormatFloat(g, 'f', -1, 64) != v {
				t.Errorf("%s: %s = %s, want %s", k, col, r[oh[col]], v)
			}
		}
	}
	t.Logf("%d school-weeks with absences", len(out)-1)

	// Each school's worst week, from the recomputation.
	peak := map[string]int{}
	for k, c := range want {
		school, _, _ := strings.Cut(k, "|")
		peak[school] = max(peak[school], c.unrep)
	}
	// Movements per école and school week, and the enrolment.
	weeks := schoolWeeks(t, filepath.Join(dir, "academy", "calendar.csv"))
	type move struct{ net, n int }
	moves := map[string]*move{}
	enrolment := map[string]int{}
	en := readback.CSV(t, filepath.Join(dir, "academy", "enrolments.csv"))
	eh := readback.Columns(en[0])
	for _, r := range en[1:] {
		d, err := time.Parse(time.DateOnly, r[eh["date"]])
		if err != nil {
			t.Fatal(err)
		}
		m := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)).Format(time.DateOnly)
		if weeks[m] == 0 {
			t.Fatalf("movement %v outside the school weeks", r)
		}
		k := r[eh["school_id"]] + "|" + m + "|" + strconv.Itoa(weeks[m])
		if moves[k] == nil {
			moves[k] = &move{}
		}
		delta, _ := strconv.Atoi(r[eh["delta"]])
		moves[k].net += delta
		moves[k].n++
		enrolment[r[eh["school_id"]]] += delta
	}
	ew := readback.CSV(t, filepath.Join(dir, "out", "resources_enrolment_week.csv"))
	wh := readback.Columns(ew[0])
	if len(ew)-1 != len(moves) {
		t.Errorf("%d école-weeks, want %d", len(ew)-1, len(moves))
	}
	for _, r := range ew[1:] {
		k := r[wh["school_id"]] + "|" + r[wh["window_start"]] + "|" + r[wh["school_week"]]
		m := moves[k]
		if m == nil {
			t.Errorf("unexpected école-week %s", k)
			continue
		}
		if g, _ := strconv.ParseFloat(r[wh["net"]], 64); int(g) != m.net || r[wh["movements"]] != strconv.Itoa(m.n) {
			t.Errorf("%s: net %s, movements %s, want %d and %d", k, r[wh["net"]], r[wh["movements"]], m.net, m.n)
		}
	}

	// The enrolment to date: for each school week with movements, every
	// école seen so far, the sum of its deltas up to the week's end.
	type dated struct {
		monday string
		delta  int
	}
	perSchool := map[string][]dated{}
	withMoves := map[string]bool{}
	for _, r := range en[1:] {
		d, _ := time.Parse(time.DateOnly, r[eh["date"]])
		m := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)).Format(time.DateOnly)
		delta, _ := strconv.Atoi(r[eh["delta"]])
		perSchool[r[eh["school_id"]]] = append(perSchool[r[eh["school_id"]]], dated{m, delta})
		withMoves[m] = true
	}
	toDate := map[string]int{} // school|monday -> enrolment at the week's end
	for s, ds := range perSchool {
		for m := range withMoves {
			seen, sum := false, 0
			for _, d := range ds {
				if d.monday <= m {
					seen, sum = true, sum+d.delta
				}
			}
			if seen {
				toDate[s+"|"+m] = sum
			}
		}
	}
	td := readback.CSV(t, filepath.Join(dir, "out", "resources_enrolment_to_date.csv"))
	tdh := readback.Columns(td[0])
	if len(td)-1 != len(toDate) {
		t.Errorf("%d école-weeks to date, want %d", len(td)-1, len(toDate))
	}
	for _, r := range td[1:] {
		end, _ := time.Parse(time.DateOnly, r[tdh["window_end"]])
		k := r[tdh["school_id"]] + "|" + end.AddDate(0, 0, -7).Format(time.DateOnly)
		w, ok := toDate[k]
		if g, _ := strconv.ParseFloat(r[tdh["enrolment"]], 64); !ok || int(g) != w {
			t.Errorf("%s: enrolment to date %s, want %d (%v)", k, r[tdh["enrolment"]], w, ok)
		}
		if first := slices.Min(slices.Collect(maps.Keys(withMoves))); r[tdh["window_start"]] != first {
			t.Errorf("%s: to date from %s, want from the first week with movements, %s", k, r[tdh["window_start"]], first)
		}
	}

	// The flags, by the rule's definition.
	projected := map[string]int{}
	pr := readback.CSV(t, filepath.Join(dir, "academy", "enrolment_projection.csv"))
	for _, r := range pr[1:] {
		projected[r[0]], _ = strconv.Atoi(r[3])
	}
	wantFlag := map[string]string{} // school -> what the reason must say
	for s, e := range enrolment {
		p := projected[s]
		if g := float64(e-p) / float64(p); math.Abs(g) >= 0.10 && math.Abs(float64(e-p)) >= 3 {
			wantFlag[s] = fmt.Sprintf("enrolment %d, ", e)
		}
	}
	for s, h := range peak {
		if h >= 72 { // peak_hours in resources.toml
			wantFlag[s] += fmt.Sprintf("%d teaching hours unreplaced in one week", h)
		}
	}
	fl := readback.CSV(t, filepath.Join(dir, "out", "resources_schools.csv"))
	fh := readback.Columns(fl[0])
	if n := len(enrolment) + len(peak); len(fl)-1 != n {
		t.Errorf("%d school rows, want %d (écoles and schools with absences)", len(fl)-1, n)
	}
	flagged := map[string]bool{}
	for _, r := range fl[1:] {
		s := r[fh["school_id"]]
		w, want := wantFlag[s]
		if got := r[fh["flag"]] == "true"; got != want {
			t.Errorf("school %s: flag %v, want %v (reason %q)", s, got, want, r[fh["reason"]])
			continue
		}
		if !want {
			continue
		}
		flagged[s] = true
		for _, part := range strings.Split(w, ", ") {
			if part != "" && !strings.Contains(r[fh["reason"]], strings.TrimSuffix(part, ", ")) {
				t.Errorf("school %s: reason %q, want it to say %q", s, r[fh["reason"]], part)
			}
		}
	}
	// Against the ground truth: every injected miss is flagged.
	tr := readback.CSV(t, filepath.Join(dir, "academy", "primary_truth.csv"))
	th := readback.Columns(tr[0])
	injected, found := 0, 0
	for _, r := range tr[1:] {
		if r[th["projection_missed"]] == "" {
			continue
		}
		injected++
		if flagged[r[th["school_id"]]] {
			found++
		} else {
			t.Errorf("école %s: projection missed (%s) but not flagged", r[th["school_id"]], r[th["projection_missed"]])
		}
	}
	if injected == 0 {
		t.Fatal("no injected projection miss to find")
	}
	t.Logf("%d schools flagged; %d of %d injected projection misses found; %d écoles flagged on enrolment without an injected miss",
		len(flagged), found, injected, countEnrolmentOnly(wantFlag, tr, th))
}

// countEnrolmentOnly counts the écoles flagged on enrolment whose
// projection missed no event (movements during the year or the
// projection's ordinary error moved them past the threshold).
func countEnrolmentOnly(flags map[string]string, truth [][]string, th map[string]int) int {
	n := 0
	for _, r := range truth[1:] {
		if r[th["projection_missed"]] == "" && strings.HasPrefix(flags[r[th["school_id"]]], "enrolment") {
			n++
		}
	}
	return n
}
