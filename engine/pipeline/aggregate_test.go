package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// evalRow is one generated input row of the aggregate tests.
type evalRow struct {
	school  string
	domain  string
	group   int32
	student int64
	score   float64
	null    bool // score is null
	at      time.Time
}

var evalSchema = arrow.NewSchema([]arrow.Field{
	{Name: "school", Type: arrow.BinaryTypes.String},
	{Name: "domain", Type: arrow.BinaryTypes.String},
	{Name: "group", Type: arrow.PrimitiveTypes.Int32},
	{Name: "student", Type: arrow.PrimitiveTypes.Int64},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Second, TimeZone: "Europe/Paris"}},
}, nil)

// genEvalRows draws n rows over days days from start, in time order with
// up to jitter of disorder.
func genEvalRows(seed uint64, n, schools, days int, jitter time.Duration) []evalRow {
	r := rand.New(rand.NewPCG(seed, 1))
	start := time.Date(2026, 9, 7, 8, 0, 0, 0, time.UTC)
	rows := make([]evalRow, n)
	for i := range rows {
		at := start.Add(time.Duration(float64(days*24) * float64(i) / float64(n) * float64(time.Hour)))
		at = at.Add(-time.Duration(r.Int64N(int64(jitter) + 1)))
		sc := int(float64(schools) * math.Pow(r.Float64(), 2)) // schools of very different sizes
		rows[i] = evalRow{
			school:  fmt.Sprintf("school-%02d", sc),
			domain:  []string{"fr", "maths"}[r.IntN(2)],
			group:   int32(r.IntN(3)),
			student: int64(sc*1000 + r.IntN(15+sc*4)),
			score:   math.Round(r.Float64()*1000) / 10,
			null:    r.IntN(20) == 0,
			at:      at,
		}
	}
	return rows
}

func evalBatch(mem memory.Allocator, rows []evalRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, evalSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.school)
		b.Field(1).(*array.StringBuilder).Append(r.domain)
		b.Field(2).(*array.Int32Builder).Append(r.group)
		b.Field(3).(*array.Int64Builder).Append(r.student)
		if r.null {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(r.score)
		}
		b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(r.at.Unix()))
	}
	return b.NewRecordBatch()
}

// outRows is what the sink of an aggregate test received: each row as
// column -> ValueStr, and the output batch it came in.
type outRows struct {
	mu    sync.Mutex
	rows  []map[string]string
	batch []int
	dead  []stream.DeadLetter
}

func (o *outRows) WriteDeadLetters(rows []stream.DeadLetter) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dead = append(o.dead, rows...)
	return nil
}

// runAggregate runs rows, in batches of batchRows, through an aggregate
// stage configured by cfg (its Input is "in").
func runAggregate(t *testing.T, cfg *config.Aggregate, rows []evalRow, batchRows int, continuous bool) *outRows {
	got, _ := runAggregateStage(t, cfg, rows, batchRows, continuous)
	return got
}

// poisonOnFree overwrites a buffer when it is freed, so that a value kept
// past the release of its batch reads garbage instead of its old bytes,
// as it would from a plugin's shared memory ring that was reused or
// unmapped (a body read in place).
type poisonOnFree struct{ memory.Allocator }

func (p poisonOnFree) Free(b []byte) {
	for i := range b {
		b[i] = 0xa5
	}
	p.Allocator.Free(b)
}

// runAggregateStage is runAggregate returning the stage too. Its batches'
// buffers are overwritten when released (poisonOnFree).
func runAggregateStage(t *testing.T, cfg *config.Aggregate, rows []evalRow, batchRows int, continuous bool) (*outRows, *aggregateStage) {
	t.Helper()
	mem := memory.NewCheckedAllocator(poisonOnFree{memory.NewGoAllocator()})
	defer mem.AssertSize(t, 0)
	cfg.Input = "in"
	if cfg.Name == "" {
		cfg.Name = "agg"
	}
	st, err := newAggregateStage(cfg, "aggregate[0]", evalSchema, mem)
	if err != nil {
		t.Fatal(err)
	}
	st.continuous = continuous
	got := &outRows{}
	g := stream.NewGraph("t")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(g.AddSource("in", stream.SourceFunc(func(ctx context.Context, _ *stream.Stage, out *stream.Outbox) error {
		for lo := 0; lo < len(rows); lo += batchRows {
			if err := out.Send(ctx, evalBatch(mem, rows[lo:min(lo+batchRows, len(rows))])); err != nil {
				return err
			}
		}
		return nil
	})))
	must(g.AddMerge("agg", stream.KindAggregate, []string{"in"}, st))
	n := 0
	must(g.AddSink("out", "agg", stream.SinkFunc(func(ctx context.Context, _ *stream.Stage, in *stream.Inbox) error {
		for {
			rec, err := in.Recv(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if !rec.Schema().Equal(st.schema) {
				t.Errorf("batch schema %s, want %s", rec.Schema(), st.schema)
			}
			for i := range int(rec.NumRows()) {
				m := map[string]string{}
				for c, f := range rec.Schema().Fields() {
					m[f.Name] = strings.Clone(rec.Column(c).ValueStr(i))
				}
				got.rows = append(got.rows, m)
				got.batch = append(got.batch, n)
			}
			n++
			rec.Release()
		}
	})))
	if _, err := g.Run(context.Background(), stream.RunOptions{DeadLetters: got}); err != nil {
		t.Fatal(err)
	}
	return got, st
}

// expectedCell is the independent recomputation of one output row.
type expectedCell struct {
	rows     int
	students map[int64]bool
	scores   []float64
}

// recompute groups rows by the keys and window the test uses (school,
// domain, ISO week in Paris) without the stage's code.
func recompute(rows []evalRow) map[string]*expectedCell {
	paris, _ := time.LoadLocation("Europe/Paris")
	out := map[string]*expectedCell{}
	for _, r := range rows {
		lt := r.at.In(paris)
		d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
		for d.Weekday() != time.Monday {
			d = d.Add(-24 * time.Hour)
		}
		k := r.school + "|" + r.domain + "|" + d.Format(time.DateOnly)
		c := out[k]
		if c == nil {
			c = &expectedCell{students: map[int64]bool{}}
			out[k] = c
		}
		c.rows++
		c.students[r.student] = true
		if !r.null {
			c.scores = append(c.scores, r.score)
		}
	}
	return out
}

// quantile7 is the type 7 quantile of sorted xs, written from the
// definition Q(p) = x[floor(h)] + (h - floor(h)) (x[floor(h)+1] - x[floor(h)]), h = (n-1)p.
func quantile7(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	h := float64(len(s)-1) * p
	f := math.Floor(h)
	if int(f)+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[int(f)] + (h-f)*(s[int(f)+1]-s[int(f)])
}

func fmtF(v float64) string { return fmt.Sprintf("%.6f", v) }

func parseF(t *testing.T, s string) string {
	t.Helper()
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return fmtF(v)
}

func weeklyConfig(minCount int) *config.Aggregate {
	ms := []string{"n = count()", "students = count_distinct(student)", "total = sum(score)", "mean = mean(score)",
		"lo = min(score)", "hi = max(score)", "median = quantile(score, 0.5)", "p90 = quantile(score, 0.9)"}
	cfg := &config.Aggregate{GroupBy: []string{"school", "domain"}, TimeColumn: "at", Window: config.WindowWeek,
		AllowedLateness: 24 * time.Hour, MinCount: minCount, Subject: "student", SuppressOver: []string{"school", "domain"}}
	for _, s := range ms {
		m, err := config.ParseMeasure(s)
		if err != nil {
			panic(err)
		}
		cfg.Measures = append(cfg.Measures, m)
	}
	return cfg
}

func TestAggregateMatchesRecomputation(t *testing.T) {
	rows := genEvalRows(7, 20000, 12, 60, 20*time.Hour)
	want := recompute(rows)
	for _, tc := range []struct {
		name       string
		continuous bool
		batchRows  int
	}{
		{"batch", false, 1000},
		{"continuous", true, 1000},
		{"continuous-small-batches", true, 37},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st := runAggregateStage(t, weeklyConfig(0), rows, tc.batchRows, tc.continuous)
			if len(st.windows) != 0 {
				t.Errorf("%d windows left open after the run", len(st.windows))
			}
			// Nine weeks of data with one day of lateness: a continuous
			// run holds the current week and the one the watermark has
			// not passed yet, not the whole term.
			if tc.continuous && st.peak > 3 {
				t.Errorf("up to %d windows open at once, want at most 3", st.peak)
			}
			if len(got.dead) > 0 {
				t.Fatalf("%d dead letters, first: %+v", len(got.dead), got.dead[0])
			}
			if len(got.rows) != len(want) {
				t.Fatalf("%d rows, want %d cells", len(got.rows), len(want))
			}
			for _, g := range got.rows {
				k := g["school"] + "|" + g["domain"] + "|" + g[ColWindowStart]
				w := want[k]
				if w == nil {
					t.Fatalf("unexpected cell %s", k)
				}
				check := func(col, v string) {
					t.Helper()
					if g[col] != v {
						t.Errorf("%s: %s = %s, want %s", k, col, g[col], v)
					}
				}
				check("n", fmt.Sprint(w.rows))
				check("students", fmt.Sprint(len(w.students)))
				start, _ := time.Parse(time.DateOnly, g[ColWindowStart])
				check(ColWindowEnd, start.AddDate(0, 0, 7).Format(time.DateOnly))
				if len(w.scores) == 0 {
					for _, col := range []string{"mean", "lo", "hi", "median", "p90"} {
						check(col, array.NullValueStr)
					}
					check("total", "0")
					continue
				}
				var sum float64
				for _, v := range w.scores {
					sum += v
				}
				for col, v := range map[string]float64{
					"total": sum, "mean": sum / float64(len(w.scores)),
					"lo": slices.Min(w.scores), "hi": slices.Max(w.scores),
					"median": quantile7(w.scores, 0.5), "p90": quantile7(w.scores, 0.9),
				} {
					if parseF(t, g[col]) != fmtF(v) {
						t.Errorf("%s: %s = %s, want %v", k, col, g[col], v)
					}
				}
			}
			batches := slices.Max(got.batch) + 1
			if tc.continuous && batches < 5 {
				t.Errorf("continuous run emitted %d batches over 9 weeks: windows should close as the watermark passes them", batches)
			}
			if !tc.continuous && batches != 1 {
				t.Errorf("batch run emitted %d batches, want everything at the end", batches)
			}
		})
	}
}

func TestAggregateContinuousBoundsStateAndDeadLettersLateRows(t *testing.T) {
	rows := genEvalRows(3, 3000, 4, 35, time.Hour)
	// A row of the first week arrives after the fourth week began.
	late := rows[0]
	late.school = "late-school"
	pos := len(rows) * 3 / 4
	rows = slices.Insert(rows, pos, late)
	got := runAggregate(t, weeklyConfig(0), rows, 100, true)
	if len(got.dead) != 1 || !strings.Contains(got.dead[0].Reason, "late") {
		t.Fatalf("dead letters %+v, want the one late row", got.dead)
	}
	for _, g := range got.rows {
		if g["school"] == "late-school" {
			t.Errorf("the late row was aggregated: %v", g)
		}
	}
	// Batch mode keeps it: nothing is late when everything closes at the end.
	got = runAggregate(t, weeklyConfig(0), rows, 100, false)
	if len(got.dead) != 0 {
		t.Fatalf("batch run dead-lettered %+v", got.dead)
	}
}

// attack tries to recover withheld counts the way an outsider would: it
// knows every published cell and, for every suppress_over column, the true
// total of each set of sibling cells (the worst case: every margin is
// published exactly). It returns the withheld cells whose value the
// resulting linear system determines, solved with exact rationals.
func attack(cells []map[string]string, keys, over []string, value string, truth map[string]int64) map[string]int64 {
	id := func(c map[string]string, skip string) string {
		var b strings.Builder
		for _, k := range keys {
			if k != skip {
				b.WriteString(k + "=" + c[k] + ";")
			}
		}
		return b.String()
	}
	var unknown []string
	col := map[string]int{}
	for _, c := range cells {
		if c[ColSuppressed] == "true" {
			col[id(c, "")] = len(unknown)
			unknown = append(unknown, id(c, ""))
		}
	}
	// One equation per sibling set: sum of its withheld cells = total -
	// its published cells.
	var eqs [][]*big.Rat
	for _, o := range over {
		sets := map[string][]map[string]string{}
		for _, c := range cells {
			sets[id(c, o)] = append(sets[id(c, o)], c)
		}
		for _, set := range sets {
			row := make([]*big.Rat, len(unknown)+1)
			for i := range row {
				row[i] = new(big.Rat)
			}
			var total, published int64
			any := false
			for _, c := range set {
				total += truth[id(c, "")]
				if c[ColSuppressed] == "true" {
					row[col[id(c, "")]].SetInt64(1)
					any = true
				} else {
					var v int64
					fmt.Sscan(c[value], &v)
					published += v
				}
			}
			if any {
				row[len(unknown)].SetInt64(total - published)
				eqs = append(eqs, row)
			}
		}
	}
	// Gauss-Jordan elimination.
	r := 0
	for c := 0; c < len(unknown) && r < len(eqs); c++ {
		p := -1
		for i := r; i < len(eqs); i++ {
			if eqs[i][c].Sign() != 0 {
				p = i
				break
			}
		}
		if p < 0 {
			continue
		}
		eqs[r], eqs[p] = eqs[p], eqs[r]
		inv := new(big.Rat).Inv(eqs[r][c])
		for k := range eqs[r] {
			eqs[r][k].Mul(eqs[r][k], inv)
		}
		for i := range eqs {
			if i != r && eqs[i][c].Sign() != 0 {
				f := new(big.Rat).Set(eqs[i][c])
				for k := range eqs[i] {
					eqs[i][k].Sub(eqs[i][k], new(big.Rat).Mul(f, eqs[r][k]))
				}
			}
		}
		r++
	}
	found := map[string]int64{}
	for _, e := range eqs[:r] {
		nz, at := 0, -1
		for k := range unknown {
			if e[k].Sign() != 0 {
				nz, at = nz+1, k
			}
		}
		if nz == 1 {
			found[unknown[at]] = e[len(unknown)].Num().Int64()
		}
	}
	return found
}

func TestSuppressionResistsRecovery(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rows := genEvalRows(seed, 2500, 14, 6, 0)
			cfg := weeklyConfig(config.DefaultMinCount)
			cfg.Window, cfg.TimeColumn = "", ""
			cfg.GroupBy = []string{"school", "domain", "group"}
			cfg.SuppressOver = cfg.GroupBy
			got := runAggregate(t, cfg, rows, 500, false)
			keys := cfg.GroupBy
			// The truth the attacker's totals come from, and the
			// independent check of the primary rule.
			truth := map[string]int64{}
			students := map[string]map[int64]bool{}
			for _, r := range rows {
				k := fmt.Sprintf("school=%s;domain=%s;group=%d;", r.school, r.domain, r.group)
				truth[k]++
				if students[k] == nil {
					students[k] = map[int64]bool{}
				}
				students[k][r.student] = true
			}
			primary, withheld := 0, 0
			for _, c := range got.rows {
				k := fmt.Sprintf("school=%s;domain=%s;group=%s;", c["school"], c["domain"], c["group"])
				small := len(students[k]) < config.DefaultMinCount
				if small {
					primary++
				}
				switch {
				case c[ColSuppressed] == "true":
					withheld++
					for _, m := range cfg.Measures {
						if c[m.Name] != array.NullValueStr {
							t.Errorf("withheld cell %s publishes %s = %s", k, m.Name, c[m.Name])
						}
					}
				case small:
					t.Errorf("cell %s from %d students is published", k, len(students[k]))
				case c["n"] != fmt.Sprint(truth[k]):
					t.Errorf("cell %s: n = %s, want %d", k, c["n"], truth[k])
				}
			}
			if primary == 0 || withheld <= primary {
				t.Fatalf("%d small cells, %d withheld: the data should need secondary suppression", primary, withheld)
			}
			if found := attack(got.rows, keys, cfg.SuppressOver, "n", truth); len(found) > 0 {
				t.Errorf("the attacker recovered %d withheld cells: %v", len(found), found)
			}
			t.Logf("%d cells, %d below %d students, %d withheld", len(got.rows), primary, config.DefaultMinCount, withheld)
		})
	}
}

func TestSuppressDeterminedThroughSeveralSets(t *testing.T) {
	// A 3x3 table over (row, col), both margins published. Cells (0,0)
	// and (0,1) are small; row 0 then holds two withheld cells, but
	// columns 0 and 1 each hold one: the stage must go on until no cell is
	// pinned.
	var cells []*aggCell
	for r := range 3 {
		for c := range 3 {
			n := 20 + r*3 + c
			if r == 0 && c < 2 {
				n = 3
			}
			subj := map[string]struct{}{}
			for i := range n {
				subj[fmt.Sprint(i)] = struct{}{}
			}
			cells = append(cells, &aggCell{keys: []any{int32(r), int32(c)}, rows: int64(n), subjects: subj})
		}
	}
	sup := suppress(cells, 11, []int{0, 1})
	var got []string
	for i, s := range sup {
		if s {
			got = append(got, fmt.Sprint(cells[i].keys))
		}
	}
	// Columns 0 and 1 each need a second withheld cell: the smallest
	// published ones, in row 1; row 1 then holds two. No cell is pinned.
	want := []string{"[0 0]", "[0 1]", "[1 0]", "[1 1]"}
	if !slices.Equal(got, want) {
		t.Errorf("withheld %v, want %v", got, want)
	}
	if i := determined(sup, [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {0, 3, 6}, {1, 4, 7}, {2, 5, 8}}); i >= 0 {
		t.Errorf("cell %v is still determined", cells[i].keys)
	}
}

// gridCells makes a table over (row, col) whose cells have size(r, c)
// subjects (and rows).
func gridCells(n int, size func(r, c int) int) []*aggCell {
	var cells []*aggCell
	for r := range n {
		for c := range n {
			subj := map[string]struct{}{}
			for i := range size(r, c) {
				subj[fmt.Sprint(i)] = struct{}{}
			}
			cells = append(cells, &aggCell{keys: []any{int32(r), int32(c)}, rows: int64(len(subj)), subjects: subj})
		}
	}
	return cells
}

// published renders cells and a withheld mask as the attacker sees them,
// with the truth its totals come from.
func published(cells []*aggCell, sup []bool) ([]map[string]string, map[string]int64) {
	var out []map[string]string
	truth := map[string]int64{}
	for i, c := range cells {
		m := map[string]string{"r": fmt.Sprint(c.keys[0]), "c": fmt.Sprint(c.keys[1]), "n": fmt.Sprint(c.rows), ColSuppressed: fmt.Sprint(sup[i])}
		if sup[i] {
			m["n"] = array.NullValueStr
		}
		truth["r="+m["r"]+";c="+m["c"]+";"] = c.rows
		out = append(out, m)
	}
	return out, truth
}

func TestSuppressBridgeBetweenTwoCycles(t *testing.T) {
	// Two 2x2 blocks of small cells joined by one small cell (1,2): every
	// row and column holds 0 or at least 2 of them, so no single total
	// gives one away, yet rows 0 and 1 minus columns 0 and 1 pin (1,2).
	small := map[[2]int]bool{{0, 0}: true, {0, 1}: true, {1, 0}: true, {1, 1}: true, {1, 2}: true,
		{2, 2}: true, {2, 3}: true, {3, 2}: true, {3, 3}: true}
	cells := gridCells(4, func(r, c int) int {
		if small[[2]int{r, c}] {
			return 5
		}
		return 30 + r + c
	})
	keys := []string{"r", "c"}
	primary := make([]bool, len(cells))
	for i, c := range cells {
		primary[i] = len(c.subjects) < 11
	}
	rows, truth := published(cells, primary)
	if found := attack(rows, keys, keys, "n", truth); len(found) != 1 || found["r=1;c=2;"] != 5 {
		t.Fatalf("primary suppression alone: the attacker recovered %v, want exactly (1,2) = 5 (the test's premise)", found)
	}
	sup := suppress(cells, 11, []int{0, 1})
	rows, truth = published(cells, sup)
	if found := attack(rows, keys, keys, "n", truth); len(found) > 0 {
		t.Errorf("the attacker recovered %v", found)
	}
	for i := range cells {
		if primary[i] && !sup[i] {
			t.Errorf("small cell %v published", cells[i].keys)
		}
	}
}
