package ruletest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/rules/abi"
)

// Report is the result of running a suite against a module.
type Report struct {
	Module string // path of the module
	Rule   string // manifest name
	SHA256 string
	Suite  string // path of the cases file
	Cases  []CaseResult
}

// CaseResult is the result of one case.
type CaseResult struct {
	Name string
	Line int
	Pass bool
	// Err is set when the case could not run as written (a value of the
	// wrong type, an unexpected or missing error...).
	Err   string
	Diffs []Diff
}

// Diff is one output value that differs from the expected one.
type Diff struct {
	Row      int
	Column   string
	Expected string
	Got      string
}

// Passed reports whether every case passed.
func (r *Report) Passed() bool { return r.Failed() == 0 }

// Failed returns the number of failed cases.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Cases {
		if !c.Pass {
			n++
		}
	}
	return n
}

// String returns a readable report: one line per case, and for a failed
// case its error or a table of the differing values.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %q (%s) against %s\n", r.Rule, r.Module, r.Suite)
	for _, c := range r.Cases {
		status := "ok  "
		if !c.Pass {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "%s %s:%d %s\n", status, r.Suite, c.Line, c.Name)
		if c.Err != "" {
			fmt.Fprintf(&b, "     %s\n", c.Err)
		}
		if len(c.Diffs) > 0 {
			fmt.Fprintf(&b, "     %-5s %-20s %-30s %s\n", "row", "column", "expected", "got")
			for _, d := range c.Diffs {
				fmt.Fprintf(&b, "     %-5d %-20s %-30s %s\n", d.Row, d.Column, d.Expected, d.Got)
			}
		}
	}
	fmt.Fprintf(&b, "%d passed, %d failed\n", len(r.Cases)-r.Failed(), r.Failed())
	return b.String()
}

// Config configures a Runner. It is immutable, as the rule host's configs
// are: NewConfig, then With… methods that each return a changed copy. The
// zero value is NewConfig().
type Config struct {
	mem         memory.Allocator
	logger      *slog.Logger
	cacheDir    string
	cacheDirSet bool
}

// NewConfig returns the default configuration: a Go allocator of the
// Runner's own, the rules' logs discarded, and the compilation cache in
// $VIGIE_CACHE_DIR or os.UserCacheDir()/vigie/wazero.
func NewConfig() Config { return Config{} }

// WithAllocator sets the Arrow allocator of the input and output records;
// tests pass a memory.NewCheckedAllocator and check it after Run.
func (c Config) WithAllocator(mem memory.Allocator) Config {
	c.mem = mem
	return c
}

// WithLogger sets the logger that receives the rules' log messages, stdout
// and stderr (the default, or nil, discards them).
func (c Config) WithLogger(l *slog.Logger) Config {
	c.logger = l
	return c
}

// WithCacheDir sets the directory of the compilation cache of compiled
// modules, "" to keep it in memory only.
func (c Config) WithCacheDir(dir string) Config {
	c.cacheDir, c.cacheDirSet = dir, true
	return c
}

// Runner runs suites against rule modules, in the sandbox and within the
// default limits of the engine. It is safe for concurrent use. Close it
// when done.
type Runner struct {
	rt  *wasmhost.Runtime
	mem memory.Allocator
}

// NewRunner returns a Runner configured by cfg.
func NewRunner(ctx context.Context, cfg Config) (*Runner, error) {
	rc := wasmhost.NewRuntimeConfig().WithLogger(cfg.logger)
	if cfg.cacheDirSet {
		rc = rc.WithCacheDir(cfg.cacheDir)
	}
	rt, err := wasmhost.NewRuntime(ctx, rc)
	if err != nil {
		return nil, fmt.Errorf("rule test runner: %w", err)
	}
	mem := cfg.mem
	if mem == nil {
		mem = memory.NewGoAllocator()
	}
	return &Runner{rt: rt, mem: mem}, nil
}

// Close releases the compiled modules and the runtime.
func (r *Runner) Close(ctx context.Context) error { return r.rt.Close(ctx) }

// Run loads the module at modulePath and runs every case of s against it,
// each in a new instance. The error is for a module that does not load; a
// case that fails, or that does not fit the module's manifest, is reported
// in the Report.
func (r *Runner) Run(ctx context.Context, modulePath string, s *Suite) (*Report, error) {
	m, err := r.rt.Load(ctx, modulePath, wasmhost.NewLoadConfig())
	if err != nil {
		return nil, err
	}
	defer m.Close(ctx)
	rep := &Report{Module: modulePath, Rule: m.Manifest.Name, SHA256: m.SHA256, Suite: s.Path}
	for i := range s.Cases {
		c := &s.Cases[i]
		res := CaseResult{Name: c.Name, Line: c.Line}
		res.Diffs, err = runCase(ctx, m, c, r.mem)
		if err != nil {
			res.Err = err.Error()
		}
		res.Pass = err == nil && len(res.Diffs) == 0
		rep.Cases = append(rep.Cases, res)
	}
	return rep, nil
}

// runCase runs one case in a fresh instance.
func runCase(ctx context.Context, m *wasmhost.Module, c *Case, mem memory.Allocator) ([]Diff, error) {
	man := m.Manifest
	group := man.Kind == abi.KindGroup
	if group && c.Groups == nil {
		return nil, fmt.Errorf("rule %q is a group rule: the case needs groups = [sizes]", man.Name)
	}
	if !group && c.Groups != nil {
		return nil, fmt.Errorf("groups given, but rule %q is a map rule", man.Name)
	}
	rec, err := buildInput(man, c, mem)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	for _, name := range sortedKeys(c.Expect) {
		if outputIndex(man, name) < 0 {
			return nil, fmt.Errorf("expect %q is not an output of rule %q (outputs: %s)", name, man.Name, columnNames(man.Outputs))
		}
	}

	b, err := m.Bind(rec.Schema(), wasmhost.NewBindConfig())
	if err != nil {
		return nil, err
	}
	inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig().WithParams(c.Params))
	if err != nil {
		return nil, expectedError(c, err)
	}
	defer inst.Close(ctx)
	var out arrow.RecordBatch
	numIn := len(man.Inputs) // map outputs follow the inputs
	if group {
		offsets := make([]uint32, 1, len(c.Groups)+1)
		for _, n := range c.Groups {
			offsets = append(offsets, offsets[len(offsets)-1]+uint32(n))
		}
		out, err = inst.EvalGroup(ctx, b, rec, offsets, mem)
		numIn = 0 // group results hold only the outputs
	} else {
		out, err = inst.EvalMap(ctx, b, rec, mem)
	}
	if err != nil {
		return nil, expectedError(c, err)
	}
	defer out.Release()
	if c.Error != "" {
		return nil, fmt.Errorf("expected an error containing %q, got none", c.Error)
	}
	return compare(man, c, out, numIn)
}

// expectedError returns nil when err is the error the case expects, else
// an error saying what happened.
func expectedError(c *Case, err error) error {
	if c.Error == "" {
		return err
	}
	if !strings.Contains(err.Error(), c.Error) {
		return fmt.Errorf("expected an error containing %q, got: %v", c.Error, err)
	}
	return nil
}

func outputIndex(man *abi.Manifest, name string) int {
	for i, o := range man.Outputs {
		if o.Name == name {
			return i
		}
	}
	return -1
}

func columnNames(cols []abi.Column) string {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.Name
	}
	return strings.Join(s, ", ")
}

// buildInput builds the input record: the manifest's inputs, in order, with
// their declared types.
func buildInput(man *abi.Manifest, c *Case, mem memory.Allocator) (arrow.RecordBatch, error) {
	for _, name := range sortedKeys(c.Input) {
		found := false
		for _, in := range man.Inputs {
			found = found || in.Name == name
		}
		if !found {
			return nil, fmt.Errorf("input %q is not an input of rule %q (inputs: %s)", name, man.Name, columnNames(man.Inputs))
		}
	}
	fields := make([]arrow.Field, len(man.Inputs))
	for i, in := range man.Inputs {
		if _, ok := c.Input[in.Name]; !ok {
			return nil, fmt.Errorf("input %q (%s) is missing", in.Name, in.Type)
		}
		fields[i] = arrow.Field{Name: in.Name, Type: wasmhost.ArrowType(in.Type), Nullable: true}
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i, in := range man.Inputs {
		for row, raw := range c.Input[in.Name] {
			v, err := parseValue(in.Type, raw)
			if err != nil {
				return nil, fmt.Errorf("input %q row %d: %w", in.Name, row, err)
			}
			appendValue(b.Field(i), in.Type, v)
		}
	}
	return b.NewRecordBatch(), nil
}

// value is one typed value of any ABI type.
type value struct {
	null bool
	b    bool
	i    int64 // int32, int64, timestamp_us, date32
	f    float64
	s    string
}

// parseValue converts a TOML value to a value of type t.
func parseValue(t abi.Type, v any) (value, error) {
	if isNull(v) {
		return value{null: true}, nil
	}
	switch t {
	case abi.Bool:
		if b, ok := v.(bool); ok {
			return value{b: b}, nil
		}
	case abi.Int32, abi.Int64:
		if i, ok := v.(int64); ok {
			if t == abi.Int32 && (i < math.MinInt32 || i > math.MaxInt32) {
				return value{}, fmt.Errorf("%d is out of the int32 range", i)
			}
			return value{i: i}, nil
		}
	case abi.Float64:
		switch x := v.(type) {
		case float64:
			return value{f: x}, nil
		case int64:
			return value{f: float64(x)}, nil
		}
	case abi.Utf8:
		switch x := v.(type) {
		case string:
			return value{s: x}, nil
		case map[string]any:
			if s, ok := x["utf8"].(string); ok && len(x) == 1 {
				return value{s: s}, nil
			}
		}
	case abi.TimestampUS:
		i, err := parseTimestamp(v)
		return value{i: i}, err
	case abi.Date32:
		d, err := parseDate(v)
		return value{i: int64(d)}, err
	}
	return value{}, fmt.Errorf("%s is not a %s value", describe(v), t)
}

func appendValue(b array.Builder, t abi.Type, v value) {
	if v.null {
		b.AppendNull()
		return
	}
	switch t {
	case abi.Bool:
		b.(*array.BooleanBuilder).Append(v.b)
	case abi.Int32:
		b.(*array.Int32Builder).Append(int32(v.i))
	case abi.Int64:
		b.(*array.Int64Builder).Append(v.i)
	case abi.Float64:
		b.(*array.Float64Builder).Append(v.f)
	case abi.Utf8:
		b.(*array.StringBuilder).Append(v.s)
	case abi.TimestampUS:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.i))
	case abi.Date32:
		b.(*array.Date32Builder).Append(arrow.Date32(v.i))
	}
}

// readValue reads row of an output array of type t.
func readValue(t abi.Type, a arrow.Array, row int) value {
	if a.IsNull(row) {
		return value{null: true}
	}
	switch t {
	case abi.Bool:
		return value{b: a.(*array.Boolean).Value(row)}
	case abi.Int32:
		return value{i: int64(a.(*array.Int32).Value(row))}
	case abi.Int64:
		return value{i: a.(*array.Int64).Value(row)}
	case abi.Float64:
		return value{f: a.(*array.Float64).Value(row)}
	case abi.Utf8:
		return value{s: a.(*array.String).Value(row)}
	case abi.TimestampUS:
		return value{i: int64(a.(*array.Timestamp).Value(row))}
	case abi.Date32:
		return value{i: int64(a.(*array.Date32).Value(row))}
	}
	return value{}
}

func equal(t abi.Type, want, got value, tol float64) bool {
	if want.null || got.null {
		return want.null == got.null
	}
	switch t {
	case abi.Bool:
		return want.b == got.b
	case abi.Float64:
		if math.IsNaN(want.f) || math.IsNaN(got.f) {
			return math.IsNaN(want.f) && math.IsNaN(got.f)
		}
		if want.f == got.f { // infinities
			return true
		}
		return math.Abs(got.f-want.f) <= tol*math.Max(1, math.Abs(want.f))
	case abi.Utf8:
		return want.s == got.s
	}
	return want.i == got.i
}

// format returns a readable form of v.
func format(t abi.Type, v value) string {
	if v.null {
		return "null"
	}
	switch t {
	case abi.Bool:
		return strconv.FormatBool(v.b)
	case abi.Float64:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case abi.Utf8:
		return strconv.Quote(v.s)
	case abi.TimestampUS:
		return fmt.Sprintf("%s (%d)", time.UnixMicro(v.i).UTC().Format(time.RFC3339Nano), v.i)
	case abi.Date32:
		return fmt.Sprintf("%s (%d)", time.Unix(v.i*86400, 0).UTC().Format(time.DateOnly), v.i)
	}
	return strconv.FormatInt(v.i, 10)
}

// compare compares the expected columns with the outputs of out (the
// outputs follow the first numIn columns).
func compare(man *abi.Manifest, c *Case, out arrow.RecordBatch, numIn int) ([]Diff, error) {
	var diffs []Diff
	for _, name := range expectOrder(man, c) {
		k := outputIndex(man, name)
		t := man.Outputs[k].Type
		col := out.Column(numIn + k)
		for row, raw := range c.Expect[name] {
			want, err := parseValue(t, raw)
			if err != nil {
				return nil, fmt.Errorf("expect %q row %d: %w", name, row, err)
			}
			got := readValue(t, col, row)
			if !equal(t, want, got, c.Tolerance) {
				diffs = append(diffs, Diff{Row: row, Column: name, Expected: format(t, want), Got: format(t, got)})
			}
		}
	}
	sort.SliceStable(diffs, func(i, j int) bool { return diffs[i].Row < diffs[j].Row })
	return diffs, nil
}

// expectOrder returns the expected columns in manifest order.
func expectOrder(man *abi.Manifest, c *Case) []string {
	var names []string
	for _, o := range man.Outputs {
		if _, ok := c.Expect[o.Name]; ok {
			names = append(names, o.Name)
		}
	}
	return names
}
