package pipelines_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/synth/academy"
)

// TestResources generates teacher absences, runs resources.toml and
// checks the unreplaced and absent hours and the teachers absent of every
// school and week against a recomputation from teacher_absences.csv.
func TestResources(t *testing.T) {
	toml := sandbox(t, "resources.toml")
	dir := filepath.Dir(toml)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	if _, err := academy.Generate(context.Background(), academy.Options{Dir: filepath.Join(dir, "academy"), Students: 6000, Seed: 1, Year: 2025, Zone: "C",
		Formats: []string{academy.FormatStaff}, Profile: academy.DefaultProfile(), Mem: mem}); err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
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
}
