package ruletest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
	"github.com/vigie-edu/vigie/rules/ruletest"
)

const (
	absenceDir   = "../../examples/rules/absence"
	absenceCases = "../conformance/absence.cases.toml"
	echoDir      = "../../internal/wasmhost/testdata/echo"
)

func run(t *testing.T, module string, s *ruletest.Suite) *ruletest.Report {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	runner, err := ruletest.NewRunner(ctx, ruletest.NewConfig().WithCacheDir(t.TempDir()).WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close(ctx)
	r, err := runner.Run(ctx, module, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAbsenceGolden(t *testing.T) {
	s, err := ruletest.Load(absenceCases)
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, hosttest.BuildGoRule(t, absenceDir), s)
	if !r.Passed() || len(r.Cases) != len(s.Cases) {
		t.Fatalf("report:\n%s", r)
	}
	if r.Rule != "absence" || len(r.SHA256) != 64 {
		t.Errorf("rule %q sha %q", r.Rule, r.SHA256)
	}
}

// TestBrokenCasesFail checks that the runner reports wrong expectations,
// with the row, the column, the expected and the got values.
func TestBrokenCasesFail(t *testing.T) {
	s, err := ruletest.Parse("broken.toml", []byte(`
[[case]]
name = "wrong rate, flag and reason"
[case.input]
absent_half_days = [7, 2, "null"]
half_days = [40, 40, 40]
[case.expect]
absence_rate = [0.17, 0.05, 0.0]
flag = [true, "null", "null"]
reason = ["absent 7 of 40 half-days (17.5 %) >= 10 % threshold", "null", "null"]

[[case]]
name = "right"
[case.input]
absent_half_days = [1]
half_days = [2]
[case.expect]
flag = [true]

[[case]]
name = "error expected, none came"
error = "boom"
[case.input]
absent_half_days = [1]
half_days = [2]

[[case]]
name = "unknown input"
[case.input]
absent = [1]
half_days = [2]
[case.expect]
flag = [true]

[[case]]
name = "value of the wrong type"
[case.input]
absent_half_days = [1.5]
half_days = [2]
[case.expect]
flag = [true]

[[case]]
name = "unknown param"
params = { treshold = 0.2 }
[case.input]
absent_half_days = [1]
half_days = [2]
[case.expect]
flag = [true]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, hosttest.BuildGoRule(t, absenceDir), s)
	if r.Passed() || r.Failed() != 5 {
		t.Fatalf("failed %d, want 5:\n%s", r.Failed(), r)
	}
	c := r.Cases[0]
	want := []ruletest.Diff{
		{Row: 0, Column: "absence_rate", Expected: "0.17", Got: "0.175"},
		{Row: 1, Column: "flag", Expected: "null", Got: "false"},
		{Row: 2, Column: "absence_rate", Expected: "0", Got: "null"},
	}
	if c.Pass || c.Line != 2 || len(c.Diffs) != len(want) {
		t.Fatalf("case 0: %+v\n%s", c, r)
	}
	for i, d := range want {
		if c.Diffs[i] != d {
			t.Errorf("diff %d = %+v, want %+v", i, c.Diffs[i], d)
		}
	}
	if !r.Cases[1].Pass {
		t.Errorf("case 1 failed: %+v", r.Cases[1])
	}
	for i, sub := range map[int]string{
		2: `expected an error containing "boom", got none`,
		3: `input "absent" is not an input of rule "absence"`,
		4: `input "absent_half_days" row 0: float 1.5 is not a int32 value`,
		5: `unknown param "treshold"`,
	} {
		if !strings.Contains(r.Cases[i].Err, sub) {
			t.Errorf("case %d error %q, want %q", i, r.Cases[i].Err, sub)
		}
	}
	text := r.String()
	for _, sub := range []string{"FAIL broken.toml:2 wrong rate, flag and reason", "ok   broken.toml:12 right",
		"0     absence_rate", "5 failed"} {
		if !strings.Contains(text, sub) {
			t.Errorf("report lacks %q:\n%s", sub, text)
		}
	}
}

// TestEchoAllTypes runs the host's all-types echo rule: every type, with
// nulls, and the string forms of timestamps and dates.
func TestEchoAllTypes(t *testing.T) {
	s, err := ruletest.Load("../conformance/types.cases.toml")
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, hosttest.BuildGoRule(t, echoDir), s)
	if !r.Passed() {
		t.Fatalf("report:\n%s", r)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"syntax", "[[case]]\nname = \"a\"\nx = [1,\n", "bad.toml:3: unexpected EOF"},
		{"no cases", "tolerance = 1e-9\n", "bad.toml: no [[case]]"},
		{"unknown key", "[[case]]\nname = \"a\"\nparms = {}\n[case.input]\nx = [1]\n[case.expect]\ny = [1]\n", "unknown keys case.parms"},
		{"no name", "[[case]]\n[case.input]\nx = [1]\n", "bad.toml:1: case 1 has no name"},
		{"duplicate", "[[case]]\nname = \"a\"\nerror = \"e\"\n[case.input]\nx = [1]\n\n[[case]]\nname = \"a\"\nerror = \"e\"\n[case.input]\nx = [1]\n",
			`bad.toml:7: case "a" already defined at line 1`},
		{"row counts", "[[case]]\nname = \"a\"\n[case.input]\nx = [1, 2]\ny = [1]\n[case.expect]\nz = [1]\n", `bad.toml:1: case "a": input "y" has 1 rows, other inputs have 2`},
		{"expect rows", "[[case]]\nname = \"a\"\n[case.input]\nx = [1, 2]\n[case.expect]\nz = [1]\n", `expect "z" has 1 rows, want 2`},
		{"groups", "[[case]]\nname = \"a\"\ngroups = [1, 2]\n[case.input]\nx = [1, 2]\n[case.expect]\nz = [1, 2]\n", "groups add up to 3 rows, inputs have 2"},
		{"nothing expected", "[[case]]\nname = \"a\"\n[case.input]\nx = [1]\n", "has neither [case.expect] nor error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ruletest.Parse("bad.toml", []byte(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := ruletest.Load(filepath.Join(t.TempDir(), "missing.toml")); !os.IsNotExist(unwrap(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrap(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestGroupRule(t *testing.T) {
	s, err := ruletest.Load("testdata/meanscore.cases.toml")
	if err != nil {
		t.Fatal(err)
	}
	module := hosttest.BuildGoRule(t, "../../internal/wasmhost/testdata/meanscore")
	r := run(t, module, s)
	if !r.Passed() {
		t.Fatalf("report:\n%s", r)
	}
	s.Cases[0].Expect["n"][0] = int64(3) // break it: the runner must see it
	r = run(t, module, s)
	if r.Passed() || len(r.Cases[0].Diffs) != 1 || r.Cases[0].Diffs[0] != (ruletest.Diff{Row: 0, Column: "n", Expected: "3", Got: "2"}) {
		t.Fatalf("broken case not reported:\n%s", r)
	}
}
