package pipelines_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/synth/academy"
)

// evalCell is the recomputation of one published cell.
type evalCell struct {
	students map[string]bool
	sum      float64
	n        int
}

// evalTable is one output of evaluations.toml: its file, the source it
// aggregates, its keys and the columns of its sibling sets; week tables
// are per ISO week ("iso") or school week of the calendar ("school").
type evalTable struct {
	file, src string
	keys      []string
	over      []string
	week      string
}

var evalTables = []evalTable{
	{"evaluations_school_week.csv", "evaluations.csv", []string{"departement", "school_id", "level", "domain", "group"}, []string{"school_id", "group"}, "iso"},
	{"evaluations_school.csv", "evaluations.csv", []string{"departement", "school_id", "level", "domain", "group"}, []string{"school_id", "group"}, ""},
	{"evaluations_departement.csv", "evaluations.csv", []string{"departement", "level", "domain", "group"}, []string{"departement", "group"}, ""},
	{"evaluations_academie.csv", "evaluations.csv", []string{"level", "domain", "group"}, []string{"level", "domain", "group"}, ""},
	{"evaluations_circonscription_week.csv", "primary_evaluations.csv", []string{"departement", "circonscription", "level", "domain", "group"}, []string{"circonscription", "group"}, "school"},
	{"evaluations_ecole.csv", "primary_evaluations.csv", []string{"departement", "circonscription", "school_id", "level", "domain", "group"}, []string{"school_id", "group"}, ""},
	{"evaluations_circonscription.csv", "primary_evaluations.csv", []string{"departement", "circonscription", "level", "domain", "group"}, []string{"circonscription", "group"}, ""},
	{"evaluations_primary_departement.csv", "primary_evaluations.csv", []string{"departement", "level", "domain", "group"}, []string{"departement", "group"}, ""},
	{"evaluations_primary_academie.csv", "primary_evaluations.csv", []string{"level", "domain", "group"}, []string{"level", "domain", "group"}, ""},
}

// generateEvaluations writes the evaluations of an academy of 8000
// students (collèges and écoles) to dir/academy.
func generateEvaluations(t *testing.T, dir string) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	if _, err := academy.Generate(context.Background(), academy.Options{Dir: filepath.Join(dir, "academy"), Students: 8000, Seed: 1, Year: 2025, Zone: "C",
		Formats: []string{academy.FormatEvaluations, academy.FormatPrimary}, Profile: academy.DefaultProfile(), Mem: mem}); err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
}

// schoolWeeks numbers the weeks (by their Monday) holding a school day of
// calendar.csv, read independently of the engine.
func schoolWeeks(t *testing.T, path string) map[string]int {
	t.Helper()
	rows := readback.CSV(t, path)
	h := readback.Columns(rows[0])
	var mondays []string
	for _, r := range rows[1:] {
		if r[h["half_days"]] == "0" {
			continue
		}
		d, err := time.Parse(time.DateOnly, r[h["date"]])
		if err != nil {
			t.Fatal(err)
		}
		m := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)).Format(time.DateOnly)
		if len(mondays) == 0 || mondays[len(mondays)-1] != m {
			mondays = append(mondays, m)
		}
	}
	out := map[string]int{}
	for i, m := range mondays {
		out[m] = i + 1
	}
	return out
}

// TestEvaluations generates an academy's national evaluations, runs
// evaluations.toml over them and checks every table against a
// recomputation from evaluations.csv and primary_evaluations.csv:
// published cells are exact and from at least 11 students, every small
// cell is withheld, and each sibling set (a school's groups, a
// circonscription's écoles) holds no single withheld cell.
func TestEvaluations(t *testing.T) {
	toml := sandbox(t, "evaluations.toml")
	dir := filepath.Dir(toml)
	generateEvaluations(t, dir)
	pipelinetest.Run(t, toml)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	weeks := schoolWeeks(t, filepath.Join(dir, "academy", "calendar.csv"))
	for _, tb := range evalTables {
		t.Run(tb.file, func(t *testing.T) {
			in := readback.CSV(t, filepath.Join(dir, "academy", tb.src))
			ih := readback.Columns(in[0])
			want := map[string]*evalCell{}
			key := func(r []string, h map[string]int, skip string) string {
				k := ""
				for _, c := range tb.keys {
					if c != skip {
						k += c + "=" + r[h[c]] + ";"
					}
				}
				return k
			}
			for _, r := range in[1:] {
				k := key(r, ih, "")
				if tb.week != "" {
					at, err := time.Parse(time.RFC3339, r[ih["entered_at"]])
					if err != nil {
						t.Fatal(err)
					}
					lt := at.In(paris)
					m := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
					m = m.AddDate(0, 0, -((int(m.Weekday()) + 6) % 7))
					if tb.week == "iso" {
						k += fmt.Sprintf("week=%s;", m.Format(time.DateOnly))
					} else {
						w := weeks[m.Format(time.DateOnly)]
						if w == 0 {
							t.Fatalf("result %v entered outside the school weeks", r)
						}
						k += fmt.Sprintf("week=%s/%d;", m.Format(time.DateOnly), w)
					}
				}
				c := want[k]
				if c == nil {
					c = &evalCell{students: map[string]bool{}}
					want[k] = c
				}
				c.students[r[ih["student_id"]]] = true
				v, err := strconv.ParseFloat(r[ih["score"]], 64)
				if err != nil {
					t.Fatal(err)
				}
				c.sum += v
				c.n++
			}
			out := readback.CSV(t, filepath.Join(dir, "out", tb.file))
			oh := readback.Columns(out[0])
			if len(out)-1 != len(want) {
				t.Fatalf("%d cells, want %d", len(out)-1, len(want))
			}
			withheld := map[string]int{} // per sibling set
			sets := map[string]int{}
			suppressed := 0
			for _, r := range out[1:] {
				k := key(r, oh, "")
				week := ""
				switch tb.week {
				case "iso":
					week = fmt.Sprintf("week=%s;", r[oh["window_start"]])
				case "school":
					week = fmt.Sprintf("week=%s/%s;", r[oh["window_start"]], r[oh["school_week"]])
				}
				w := want[k+week]
				if w == nil {
					t.Fatalf("unexpected cell %s", k+week)
				}
				sup := r[oh["suppressed"]] == "true"
				for _, o := range tb.over {
					set := o + ":" + key(r, oh, o) + week
					sets[set]++
					if sup {
						withheld[set]++
					}
				}
				if sup {
					suppressed++
					if r[oh["students"]] != "" || r[oh["mean_score"]] != "" {
						t.Errorf("%s: withheld but published %q", k, r)
					}
					continue
				}
				if len(w.students) < 11 {
					t.Errorf("%s: published with %d students", k, len(w.students))
				}
				if r[oh["students"]] != fmt.Sprint(len(w.students)) {
					t.Errorf("%s: students %s, want %d", k, r[oh["students"]], len(w.students))
				}
				mean, err := strconv.ParseFloat(r[oh["mean_score"]], 64)
				if err != nil || math.Abs(mean-w.sum/float64(w.n)) > 1e-9 {
					t.Errorf("%s: mean %s, want %v", k, r[oh["mean_score"]], w.sum/float64(w.n))
				}
			}
			for s, n := range withheld {
				if n == 1 && sets[s] > 1 {
					t.Errorf("sibling set %s has one withheld cell among %d", s, sets[s])
				}
			}
			if suppressed == len(out)-1 {
				t.Errorf("every cell withheld")
			}
			t.Logf("%s: %d cells, %d withheld", tb.file, len(out)-1, suppressed)
		})
	}
}
