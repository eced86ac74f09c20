// Package rulecpu is the workload of the measuring tools that time the
// early-warning rule alone (examples/rules/early_warning's TestRuleCPU,
// internal/wasmhost's TestRuleCPUHost): the timelines of the first
// students of a generated academy (vigie gen; docs/performance.md has the
// recipe), cut into batches of groups as the engine's group stage cuts
// them for the 100,000-student run, and a loop that runs several
// evaluators over them in turn and compares their CPU time and outputs.
// It is for tests only; it does not import the host, so that the host's
// own tests can use it.
package rulecpu

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// GroupsPerBatch is the number of students per batch: what the engine's
// group stage gave the rule in the 100,000-student run.
const GroupsPerBatch = 352

// Dir is the academy's folder: EW_DATA, else /dev/shm/ac2.
func Dir() string {
	if d := os.Getenv("EW_DATA"); d != "" {
		return d
	}
	return "/dev/shm/ac2"
}

// Students is EW_STUDENTS, else def.
func Students(def int) int {
	if s := os.Getenv("EW_STUDENTS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return def
}

// LastStudent is the id of the n-th student of a generated academy
// (S000001 is the first; n < 1,000,000).
func LastStudent(n int) string { return "S" + strconv.Itoa(1000000 + n)[1:] }

// ReadCSV calls f with the header's column indexes and each record of the
// CSV file at path, until f returns false. It fails the test on an error.
func ReadCSV(t testing.TB, path string, f func(h map[string]int, r []string) bool) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	cr := csv.NewReader(fh)
	hdr, err := cr.Read()
	if err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	h := map[string]int{}
	for i, n := range hdr {
		h[n] = i
	}
	for {
		r, err := cr.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !f(h, r) {
			return
		}
	}
}

// Day is the date s (YYYY-MM-DD) in days since 1970-01-01, and whether it
// parsed.
func Day(s string) (int32, bool) {
	tm, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, false
	}
	return int32(tm.Unix() / 86400), true
}

// ThreadCPU is the CPU time of the calling thread (lock it first).
func ThreadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Schema is the timeline's schema, the union of examples/pipelines/term.toml's
// absences, grades and activity.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "half", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "justified", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "corrects", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "recorded_at", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "subject", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "period", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "mark", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// Batch is one call's input: the timelines of GroupsPerBatch students,
// each ordered by date (undated rows last), and the groups' row offsets.
type Batch struct {
	Rec     arrow.RecordBatch
	Offsets []uint32
}

type row struct {
	student                                                   string
	date                                                      int32
	hasDate                                                   bool
	half, corrects, recorded, subject, period, status, justif string
	mark                                                      string
}

// Batches reads the timelines of the first n students of the academy in
// dir into batches allocated from mem, released when the test ends (a
// t.Cleanup: check mem's size in a cleanup registered before).
func Batches(t testing.TB, mem memory.Allocator, dir string, n int) []Batch {
	t.Helper()
	last := LastStudent(n)
	per := map[string][]row{}
	ReadCSV(t, dir+"/absences.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > last {
			return false
		}
		d, ok := Day(r[h["date"]])
		per[s] = append(per[s], row{student: s, date: d, hasDate: ok, half: r[h["half"]], justif: r[h["justified"]],
			corrects: r[h["corrects"]], recorded: r[h["recorded_at"]]})
		return true
	})
	ReadCSV(t, dir+"/grades.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > last {
			return false
		}
		per[s] = append(per[s], row{student: s, subject: r[h["subject"]], period: r[h["period"]], mark: r[h["mark"]], status: r[h["status"]]})
		return true
	})
	ReadCSV(t, dir+"/activity.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > last {
			return false
		}
		d, ok := Day(r[h["date"]])
		per[s] = append(per[s], row{student: s, date: d, hasDate: ok})
		return true
	})
	students := make([]string, 0, len(per))
	for s := range per {
		students = append(students, s)
	}
	slices.Sort(students)
	str := func(b *array.StringBuilder, s string, present bool) {
		if present {
			b.Append(s)
		} else {
			b.AppendNull()
		}
	}
	var batches []Batch
	t.Cleanup(func() {
		for _, b := range batches {
			b.Rec.Release()
		}
	})
	for i := 0; i < len(students); i += GroupsPerBatch {
		bld := array.NewRecordBuilder(mem, Schema)
		offsets := []uint32{0}
		n := 0
		for _, s := range students[i:min(i+GroupsPerBatch, len(students))] {
			rows := per[s]
			slices.SortStableFunc(rows, func(a, b row) int {
				if a.hasDate != b.hasDate {
					if !a.hasDate {
						return 1
					}
					return -1
				}
				return int(a.date - b.date)
			})
			for _, r := range rows {
				bld.Field(0).(*array.StringBuilder).Append(r.student)
				if r.hasDate {
					bld.Field(1).(*array.Date32Builder).Append(arrow.Date32(r.date))
				} else {
					bld.Field(1).AppendNull()
				}
				abs := r.half != ""
				str(bld.Field(2).(*array.StringBuilder), r.half, abs)
				if abs {
					bld.Field(3).(*array.BooleanBuilder).Append(r.justif == "true")
				} else {
					bld.Field(3).AppendNull()
				}
				str(bld.Field(4).(*array.StringBuilder), r.corrects, abs)
				str(bld.Field(5).(*array.StringBuilder), r.recorded, abs)
				gr := r.period != ""
				str(bld.Field(6).(*array.StringBuilder), r.subject, gr)
				str(bld.Field(7).(*array.StringBuilder), r.period, gr)
				if m, err := strconv.ParseFloat(r.mark, 64); gr && err == nil {
					bld.Field(8).(*array.Float64Builder).Append(m)
				} else {
					bld.Field(8).AppendNull()
				}
				str(bld.Field(9).(*array.StringBuilder), r.status, gr)
				n++
			}
			offsets = append(offsets, uint32(n))
		}
		batches = append(batches, Batch{bld.NewRecordBatch(), offsets})
		bld.Release()
	}
	t.Logf("%d students, %d batches", len(students), len(batches))
	return batches
}

// Subject is one evaluator Compare times: Eval runs the rule over one
// batch and returns its output, which Compare releases.
type Subject struct {
	Name string
	Eval func(b Batch) (arrow.RecordBatch, error)
}

// Compare runs every subject over every batch, the subjects in turn, for
// rounds rounds, on one locked thread; it logs each subject's CPU time per
// round and the sha256 of its output, and fails the test when two
// subjects' outputs differ.
func Compare(t testing.TB, rounds int, batches []Batch, subjects []Subject) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := make([][]time.Duration, len(subjects))
	sums := make([]string, len(subjects))
	for range rounds {
		for i, s := range subjects {
			h := sha256.New()
			var spent time.Duration
			for _, b := range batches {
				c0 := ThreadCPU()
				out, err := s.Eval(b)
				spent += ThreadCPU() - c0
				if err != nil {
					t.Fatalf("%s: %v", s.Name, err)
				}
				for j := range out.NumCols() {
					io.WriteString(h, out.Column(int(j)).String())
				}
				out.Release()
			}
			cpu[i] = append(cpu[i], spent)
			sums[i] = hex.EncodeToString(h.Sum(nil))
		}
	}
	for i, s := range subjects {
		t.Logf("%s: cpu %v (output sha256 %s)", s.Name, cpu[i], sums[i][:16])
	}
	for i, s := range subjects[1:] {
		if sums[i+1] != sums[0] {
			t.Errorf("%s: output differs from %s's", s.Name, subjects[0].Name)
		}
	}
}
