package pipelines_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

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

// TestEvaluations generates an academy's national evaluations, runs
// evaluations.toml over them and checks every table against a
// recomputation from evaluations.csv: published cells are exact and from
// at least 11 students, every small cell is withheld, and each sibling
// set (a school's groups, a département's schools) holds no single
// withheld cell.
func TestEvaluations(t *testing.T) {
	toml := sandbox(t, "evaluations.toml")
	dir := filepath.Dir(toml)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	if _, err := academy.Generate(context.Background(), academy.Options{Dir: filepath.Join(dir, "academy"), Students: 8000, Seed: 1, Year: 2025, Zone: "C",
		Formats: []string{academy.FormatEvaluations}, Profile: academy.DefaultProfile(), Mem: mem}); err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	pipelinetest.Run(t, toml)

	in := readback.CSV(t, filepath.Join(dir, "academy", "evaluations.csv"))
	ih := readback.Columns(in[0])
	tables := []struct {
		file string
		keys []string
		over []string
	}{
		{"evaluations_school.csv", []string{"departement", "school_id", "level", "domain", "group"}, []string{"school_id", "group"}},
		{"evaluations_departement.csv", []string{"departement", "level", "domain", "group"}, []string{"departement", "group"}},
		{"evaluations_academie.csv", []string{"level", "domain", "group"}, []string{"level", "domain", "group"}},
	}
	for _, tb := range tables {
		t.Run(tb.file, func(t *testing.T) {
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
				w := want[k]
				if w == nil {
					t.Fatalf("unexpected cell %s", k)
				}
				sup := r[oh["suppressed"]] == "true"
				for _, o := range tb.over {
					sets[o+":"+key(r, oh, o)]++
					if sup {
						withheld[o+":"+key(r, oh, o)]++
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
			t.Logf("%s: %d cells, %d withheld", tb.file, len(out)-1, suppressed)
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "evaluations_school_week.csv")); err != nil {
		t.Fatal(err)
	}
}
