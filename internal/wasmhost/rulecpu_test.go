package wasmhost

// TestRuleCPUHost is a measuring tool, skipped unless EW_MODULES is set:
// it is examples/rules/early_warning's TestRuleCPU (the same students, the
// same batches of 352 groups), but each module of EW_MODULES runs under
// each host variant of EW_HOST (a comma-separated list, default
// "checks,nochecks"), all of them alternated for three rounds, and it logs
// the CPU time of the calling thread for each pair. The variants:
//
//   - checks: the host as it runs rules (instrument.Rewrite);
//   - nochecks: the globals but no check, what the interrupt checks cost;
//   - nodirect: Go's forward jumps left going through the dispatch loop;
//   - everyloop: a check at every function start and loop head, as the
//     rewrite did before it recognised Go's dispatch loops
//
// (instrument.Options). It fails when two pairs' outputs differ. The data
// are EW_DATA (default /dev/shm/ac2, see docs/performance.md).
//
//	EW_HOST=everyloop,nodirect,checks,nochecks EW_STUDENTS=3000 EW_MODULES=/tmp/ew.wasm \
//	    go test ./internal/wasmhost -run RuleCPUHost -count=1 -v

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
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

	"github.com/vigie-edu/vigie/internal/wasmhost/instrument"
)

type ewRow struct {
	student                                                   string
	date                                                      int32
	hasDate                                                   bool
	half, corrects, recorded, subject, period, status, justif string
	mark                                                      string
}

func ewReadCSV(t *testing.T, path string, f func(h map[string]int, r []string) bool) {
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

func ewDay(s string) (int32, bool) {
	tm, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, false
	}
	return int32(tm.Unix() / 86400), true
}

func ewDataDir() string {
	if d := os.Getenv("EW_DATA"); d != "" {
		return d
	}
	return "/dev/shm/ac2"
}

func ewThreadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostVariants are the host configurations TestRuleCPUHost compares.
var hostVariants = map[string]RuntimeConfig{
	"checks":    NewRuntimeConfig(),
	"nochecks":  {rewrite: rewriteWith(instrument.Options{NoChecks: true})},
	"nodirect":  {rewrite: rewriteWith(instrument.Options{NoDirectJumps: true})},
	"everyloop": {rewrite: rewriteWith(instrument.Options{EveryLoop: true})},
}

func rewriteWith(o instrument.Options) func([]byte) ([]byte, error) {
	return func(wasm []byte) ([]byte, error) { return instrument.RewriteWith(wasm, o) }
}

func TestRuleCPUHost(t *testing.T) {
	mods := strings.Split(os.Getenv("EW_MODULES"), ",")
	if mods[0] == "" {
		t.Skip("EW_MODULES")
	}
	nStudents := 10000
	if s := os.Getenv("EW_STUDENTS"); s != "" {
		nStudents, _ = strconv.Atoi(s)
	}
	limit := "S" + strconv.Itoa(1000000 + nStudents)[1:] // S0xxxxx
	per := map[string][]ewRow{}
	keep := func(s string) bool { return s <= limit }
	ewReadCSV(t, ewDataDir()+"/absences.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if !keep(s) {
			return false
		}
		d, ok := ewDay(r[h["date"]])
		per[s] = append(per[s], ewRow{student: s, date: d, hasDate: ok, half: r[h["half"]], justif: r[h["justified"]],
			corrects: r[h["corrects"]], recorded: r[h["recorded_at"]]})
		return true
	})
	ewReadCSV(t, ewDataDir()+"/grades.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if !keep(s) {
			return false
		}
		per[s] = append(per[s], ewRow{student: s, subject: r[h["subject"]], period: r[h["period"]], mark: r[h["mark"]], status: r[h["status"]]})
		return true
	})
	ewReadCSV(t, ewDataDir()+"/activity.csv", func(h map[string]int, r []string) bool {
		s := r[h["student_id"]]
		if !keep(s) {
			return false
		}
		d, ok := ewDay(r[h["date"]])
		per[s] = append(per[s], ewRow{student: s, date: d, hasDate: ok})
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
			slices.SortStableFunc(rows, func(a, b ewRow) int {
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
	hosts := strings.Split(os.Getenv("EW_HOST"), ",")
	if hosts[0] == "" {
		hosts = []string{"checks", "nochecks"}
	}
	ctx := context.Background()
	type m struct {
		name string
		b    *Binding
		inst *Instance
		cpu  []time.Duration
		sum  string
	}
	var ms []*m
	for _, h := range hosts {
		cfg, ok := hostVariants[h]
		if !ok {
			t.Fatalf("EW_HOST: unknown variant %q", h)
		}
		rt, err := NewRuntime(ctx, cfg.WithCacheDir(t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Close(ctx)
		for _, p := range mods {
			mod, err := rt.Load(ctx, p, NewLoadConfig())
			if err != nil {
				t.Fatal(err)
			}
			b, err := mod.Bind(schema, NewBindConfig())
			if err != nil {
				t.Fatal(err)
			}
			inst, err := mod.NewInstance(ctx, NewInstanceConfig().WithParams(map[string]any{"raise_at": 0.65, "clear_below": 0.3}))
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Close(ctx)
			ms = append(ms, &m{name: fmt.Sprintf("%s [%s]", p, h), b: b, inst: inst})
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for range 3 {
		for _, x := range ms {
			h := sha256.New()
			var cpu time.Duration
			for _, bt := range batches {
				c0 := ewThreadCPU()
				out, err := x.inst.EvalGroup(ctx, x.b, bt.rec, bt.offsets, mem)
				cpu += ewThreadCPU() - c0
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
