package main

// TestRuleCPU is a measuring tool, skipped unless EW_MODULES is set: the
// rule alone (wazero, the engine's host: internal/wasmhost) over the
// first EW_STUDENTS (default 10,000) students of the seed-2 academy in
// EW_DATA (default /dev/shm/ac2, see docs/performance.md), in batches of
// 352 groups as the 100K run makes them, for each module of EW_MODULES (a
// comma-separated list of .wasm files), three rounds alternated; it logs
// the CPU time of the calling thread per module and round, and fails when
// two modules' outputs differ. TestNativeProfile (EW_NATIVE=1) runs
// Evaluate natively over the same students, for go test -cpuprofile.
//
//	EW_MODULES=/tmp/before.wasm,examples/rules/early_warning/early_warning.wasm \
//	    go test ./examples/rules/early_warning -run RuleCPU -v

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/indicators"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

type row struct {
	student                                                   string
	date                                                      int32
	hasDate                                                   bool
	half, corrects, recorded, subject, period, status, justif string
	mark                                                      string
}

func readCSV(t *testing.T, path string, f func(h map[string]int, r []string) bool) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	cr := csv.NewReader(fh)
	hdr, _ := cr.Read()
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

func day(s string) (int32, bool) {
	tm, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, false
	}
	return int32(tm.Unix() / 86400), true
}

func dataDir() string {
	if d := os.Getenv("EW_DATA"); d != "" {
		return d
	}
	return "/dev/shm/ac2"
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestRuleCPU(t *testing.T) {
	mods := strings.Split(os.Getenv("EW_MODULES"), ",")
	if mods[0] == "" {
		t.Skip("EW_MODULES")
	}
	nStudents := 10000
	if s := os.Getenv("EW_STUDENTS"); s != "" {
		nStudents, _ = strconv.Atoi(s)
	}
	limit := "S" + strconv.Itoa(1000000 + nStudents)[1:] // S0xxxxx
	per := map[string][]row{}
	keep := func(s string) bool { return s <= limit }
	readCSV(t, dataDir()+"/absences.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if !keep(s) {
			return false
		}
		d, ok := day(r[h["date"]])
		per[s] = append(per[s], row{student: s, date: d, hasDate: ok, half: r[h["half"]], justif: r[h["justified"]],
			corrects: r[h["corrects"]], recorded: r[h["recorded_at"]]})
		return true
	})
	readCSV(t, dataDir()+"/grades.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if !keep(s) {
			return false
		}
		per[s] = append(per[s], row{student: s, subject: r[h["subject"]], period: r[h["period"]], mark: r[h["mark"]], status: r[h["status"]]})
		return true
	})
	readCSV(t, dataDir()+"/activity.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if !keep(s) {
			return false
		}
		d, ok := day(r[h["date"]])
		per[s] = append(per[s], row{student: s, date: d, hasDate: ok})
		return true
	})
	students := make([]string, 0, len(per))
	for s := range per {
		students = append(students, s)
	}
	slices.Sort(students)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
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
	type batch struct {
		rec     arrow.RecordBatch
		offsets []uint32
	}
	var batches []batch
	const groupsPer = 352
	str := func(b *array.StringBuilder, s string, present bool) {
		if present {
			b.Append(s)
		} else {
			b.AppendNull()
		}
	}
	for i := 0; i < len(students); i += groupsPer {
		bld := array.NewRecordBuilder(mem, schema)
		offsets := []uint32{0}
		n := 0
		for _, s := range students[i:min(i+groupsPer, len(students))] {
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
		batches = append(batches, batch{bld.NewRecordBatch(), offsets})
		bld.Release()
	}
	defer func() {
		for _, bt := range batches {
			bt.rec.Release()
		}
	}()
	t.Logf("%d students, %d batches", len(students), len(batches))
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	type m struct {
		name string
		b    *wasmhost.Binding
		inst *wasmhost.Instance
		cpu  []time.Duration
		sum  string
	}
	var ms []*m
	for _, p := range mods {
		mod, err := rt.Load(ctx, p, wasmhost.NewLoadConfig())
		if err != nil {
			t.Fatal(err)
		}
		b, err := mod.Bind(schema, wasmhost.NewBindConfig())
		if err != nil {
			t.Fatal(err)
		}
		inst, err := mod.NewInstance(ctx, wasmhost.NewInstanceConfig().WithParams(map[string]any{"raise_at": 0.65, "clear_below": 0.3}))
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		ms = append(ms, &m{name: p, b: b, inst: inst})
	}
	runtime.LockOSThread()
	rounds := 3
	for range rounds {
		for _, x := range ms {
			h := sha256.New()
			var cpu time.Duration
			for _, bt := range batches {
				c0 := threadCPU()
				out, err := x.inst.EvalGroup(ctx, x.b, bt.rec, bt.offsets, mem)
				cpu += threadCPU() - c0
				if err != nil {
					t.Fatal(err)
				}
				for j := range out.NumCols() {
					io.WriteString(h, out.Column(int(j)).String())
				}
				out.Release()
			}
			x.cpu = append(x.cpu, cpu)
			x.sum = hex.EncodeToString(h.Sum(nil))
		}
	}
	for _, x := range ms {
		t.Logf("%s: cpu %v (output sha256 %s)", x.name, x.cpu, x.sum[:16])
	}
	for _, x := range ms[1:] {
		if x.sum != ms[0].sum {
			t.Errorf("%s output differs", x.name)
		}
	}
}

// TestNativeProfile: the rule's Evaluate natively over the same students,
// for a CPU profile (go test -cpuprofile).
func TestNativeProfile(t *testing.T) {
	if os.Getenv("EW_NATIVE") == "" {
		t.Skip("EW_NATIVE")
	}
	nStudents := 3000
	if s := os.Getenv("EW_STUDENTS"); s != "" {
		nStudents, _ = strconv.Atoi(s)
	}
	limit := "S" + strconv.Itoa(1000000 + nStudents)[1:]
	per := map[string][]indicators.Event{}
	readCSV(t, dataDir()+"/absences.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > limit {
			return false
		}
		if r[h["corrects"]] != "" {
			return true
		}
		d, _ := day(r[h["date"]])
		per[s] = append(per[s], indicators.Event{Kind: indicators.Absence, Day: d, Justified: r[h["justified"]] == "true"})
		return true
	})
	readCSV(t, dataDir()+"/grades.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > limit {
			return false
		}
		e := indicators.Event{Kind: indicators.Mark, Term: int(r[h["period"]][1] - '1'), Subject: r[h["subject"]], Mark: math.NaN()}
		switch r[h["status"]] {
		case "ok":
			e.Mark, _ = strconv.ParseFloat(r[h["mark"]], 64)
		case "absent", "not_graded", "missing":
		default:
			return true
		}
		per[s] = append(per[s], e)
		return true
	})
	readCSV(t, dataDir()+"/activity.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if s > limit {
			return false
		}
		d, _ := day(r[h["date"]])
		per[s] = append(per[s], indicators.Event{Kind: indicators.Activity, Day: d})
		return true
	})
	cfg := indicators.DefaultConfig()
	if err := cfg.Set("raise_at", 0.65); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Set("clear_below", 0.3); err != nil {
		t.Fatal(err)
	}
	memo := cfg.NewMemo(32 << 20)
	var ev []indicators.Event
	t0 := time.Now()
	for range 5 {
		for s, e := range per {
			ev = append(ev[:0], e...)
			memo.Evaluate(s, ev)
		}
	}
	t.Logf("%d students x5: %v", len(per), time.Since(t0))
}
