package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/internal/readback"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// repoRoot is the root of this checkout, from the package directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// absenceWasm builds the example absence rule and returns its path.
func absenceWasm(t *testing.T) string {
	t.Helper()
	return hosttest.BuildGoRule(t, filepath.Join(repoRoot(t), "examples", "rules", "absence"))
}

func TestRuleUsage(t *testing.T) {
	_, stderr, code := runVigie(t, t.TempDir(), "rule")
	if code != exitUsage || !strings.Contains(stderr, "inspect") {
		t.Errorf("vigie rule: exit %d, stderr:\n%s", code, stderr)
	}
	_, stderr, code = runVigie(t, t.TempDir(), "rule", "frobnicate")
	if code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("vigie rule frobnicate: exit %d, stderr:\n%s", code, stderr)
	}
	_, stderr, code = runVigie(t, t.TempDir(), "rule", "test", "only-one-arg.wasm")
	if code != exitUsage {
		t.Errorf("vigie rule test with one argument: exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
}

func TestRuleInspectAbsence(t *testing.T) {
	wasm := absenceWasm(t)
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	stdout, stderr, code := runVigie(t, t.TempDir(), "rule", "inspect", wasm)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"sha256  " + hex.EncodeToString(sum[:]),
		"(" + strconv.Itoa(len(b)) + " bytes)",
		"name         absence\n",
		"version      1.0.0\n",
		"kind         map\n",
		"absent_half_days     int32",
		"half_days            int32",
		"absence_rate         float64",
		"reason               utf8",
		"threshold            float64      default 0.1",
		"vigie.fail",
		"wasi_snapshot_preview1.",
		"vigie_eval                                    (i32, i32) -> (i32)",
		"✓ imports only vigie.log, vigie.fail and wasi_snapshot_preview1.*",
		"✓ exports vigie_manifest () -> (i64)",
		"✓ vigie_abi_version returns 1",
		"✓ manifest valid",
		"✓ loads in the Vigie host",
		"conforms to the rule ABI",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "✗") {
		t.Errorf("a check failed:\n%s", stdout)
	}

	stdout, _, code = runVigie(t, t.TempDir(), "rule", "inspect", "--json", wasm)
	var r struct {
		SHA256   string `json:"sha256"`
		Size     int    `json:"size"`
		Conforms bool   `json:"conforms"`
		Manifest struct {
			Name   string `json:"name"`
			Params []struct {
				Name    string  `json:"name"`
				Default float64 `json:"default"`
			} `json:"params"`
		} `json:"manifest"`
		Exports []struct{ Name, Signature string } `json:"exports"`
		Checks  []struct{ Name, Status string }    `json:"checks"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if code != exitOK || !r.Conforms || r.SHA256 != hex.EncodeToString(sum[:]) || r.Size != len(b) ||
		r.Manifest.Name != "absence" || len(r.Manifest.Params) != 1 || r.Manifest.Params[0].Default != 0.1 {
		t.Errorf("--json: exit %d, %+v", code, r)
	}
	exports := map[string]string{}
	for _, e := range r.Exports {
		exports[e.Name] = e.Signature
	}
	if exports["vigie_alloc"] != "(i32) -> (i32)" || exports["vigie_manifest"] != "() -> (i64)" {
		t.Errorf("--json exports: %v", exports)
	}
	if len(r.Checks) < 10 {
		t.Errorf("--json: only %d checks", len(r.Checks))
	}
}

func TestRuleInspectForbiddenImport(t *testing.T) {
	wasm := filepath.Join(repoRoot(t), "internal", "wasmhost", "testdata", "forbidden_import.wasm")
	stdout, stderr, code := runVigie(t, t.TempDir(), "rule", "inspect", wasm)
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	for _, want := range []string{
		`✗ imports only vigie.log, vigie.fail and wasi_snapshot_preview1.*: forbidden import "env.now"`,
		`✗ loads in the Vigie host`,
		"env.now                                       () -> (i64)",
		"does NOT conform",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}

	stdout, _, code = runVigie(t, t.TempDir(), "rule", "inspect", wasm, "--json")
	var r struct {
		Conforms bool
		Imports  []struct{ Module, Name string }
		Checks   []struct{ Name, Status, Detail string }
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if code != exitFailed || r.Conforms {
		t.Errorf("--json: exit %d, conforms %v", code, r.Conforms)
	}
	named := false
	for _, c := range r.Checks {
		if c.Status == "fail" && strings.Contains(c.Detail, "env.now") {
			named = true
		}
	}
	if !named {
		t.Errorf("--json: no failing check names env.now: %+v", r.Checks)
	}
}

// TestRuleInspectOtherHostileModules checks that every module the host
// refuses is reported as not conforming, with a reason.
func TestRuleInspectOtherHostileModules(t *testing.T) {
	for file, reason := range map[string]string{
		"abi2.wasm":           "✗ vigie_abi_version returns 1: returns 2",
		"not-wasm.wasm":       "✗ valid WebAssembly module",
		"no_eval_export.wasm": `✗ exports vigie_eval (i32, i32) -> (i32): missing`,
	} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join(repoRoot(t), "internal", "wasmhost", "testdata", file)
			switch file {
			case "not-wasm.wasm":
				path = filepath.Join(t.TempDir(), file)
				if err := os.WriteFile(path, []byte("\x00asm but not really"), 0o644); err != nil {
					t.Fatal(err)
				}
			case "no_eval_export.wasm":
				wat := filepath.Join(repoRoot(t), "internal", "wasmhost", "testdata", "forbidden_import.wat")
				path = watReplacing(t, wat, `(func (export "vigie_eval")`, `(func`)
			}
			stdout, _, code := runVigie(t, t.TempDir(), "rule", "inspect", path)
			if code != exitFailed || !strings.Contains(stdout, reason) {
				t.Errorf("exit %d, want 1 and %q in:\n%s", code, reason, stdout)
			}
		})
	}
}

// watReplacing compiles the WAT file at path with old replaced by new,
// with wat2wasm; it skips the test when wat2wasm is missing.
func watReplacing(t *testing.T, path, old, new string) string {
	t.Helper()
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm not found (apt-get install wabt)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s lacks %q", path, old)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "m.wat")
	if err := os.WriteFile(src, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "m.wasm")
	if b, err := exec.Command("wat2wasm", src, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

func TestRuleTestGoldenCases(t *testing.T) {
	wasm := absenceWasm(t)
	cases := filepath.Join(repoRoot(t), "rules", "conformance", "absence.cases.toml")
	stdout, stderr, code := runVigie(t, t.TempDir(), "rule", "test", wasm, cases)
	if code != exitOK || !strings.Contains(stdout, "8 passed, 0 failed") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// A wrong expected value: exit 1, and the diff names the row, the
	// column, the expected and the actual value.
	dir := t.TempDir()
	wrong := filepath.Join(dir, "CASES.toml")
	if err := os.WriteFile(wrong, []byte(`
[[case]]
name = "right"
[case.input]
absent_half_days = [4]
half_days = [40]
[case.expect]
absence_rate = [0.1]

[[case]]
name = "wrong rate on the second row"
[case.input]
absent_half_days = [4, 7, "null"]
half_days = [40, 40, 40]
[case.expect]
absence_rate = [0.1, 0.2, "null"]
flag = [true, true, "null"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runVigie(t, dir, "rule", "test", wasm, "CASES.toml")
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	diffLine := regexp.MustCompile(`(?m)^\s+1\s+absence_rate\s+0\.2\s+0\.175\s*$`)
	for _, want := range []string{"ok   CASES.toml:2 right", "FAIL CASES.toml:10 wrong rate on the second row", "1 passed, 1 failed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s\nstderr:\n%s", want, stdout, stderr)
		}
	}
	if !diffLine.MatchString(stdout) || !regexp.MustCompile(`row\s+column\s+expected\s+got`).MatchString(stdout) {
		t.Errorf("no diff line for row 1, absence_rate, expected 0.2, got 0.175:\n%s", stdout)
	}
	if strings.Contains(stdout, " 0 absence_rate") || strings.Contains(stdout, "flag ") {
		t.Errorf("the diff lists values that match:\n%s", stdout)
	}

	// A cases file that does not parse: exit 1 with the file and line.
	if err := os.WriteFile(wrong, []byte("[[case]]\nname = \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runVigie(t, dir, "rule", "test", wasm, "CASES.toml")
	if code != exitFailed || !strings.Contains(stderr, "CASES.toml:2") {
		t.Errorf("broken cases file: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestRuleBench(t *testing.T) {
	wasm := absenceWasm(t)
	stdout, stderr, code := runVigie(t, t.TempDir(), "rule", "bench", wasm,
		"--rows", "40000", "--batch-rows", "8192", "--param", "threshold=0.2")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`(?m)^(\d+) rows/s$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no rows/s figure:\n%s", stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n <= 0 {
		t.Errorf("rows/s = %s", m[1])
	}
	for _, want := range []string{"40960 rows in 5 batches", "MB/s in", "absent_half_days int32, half_days int32"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// A parameter the rule refuses fails the bench.
	_, stderr, code = runVigie(t, t.TempDir(), "rule", "bench", wasm, "--rows", "10", "--param", "threshold=7")
	if code != exitFailed || !strings.Contains(stderr, "not between 0 and 1") {
		t.Errorf("threshold=7: exit %d, stderr:\n%s", code, stderr)
	}
}

// TestRuleNewGo scaffolds a Go rule outside the repository, builds it as
// generated and runs its own golden cases.
func TestRuleNewGo(t *testing.T) {
	root := t.TempDir()
	stdout, stderr, code := runVigie(t, root, "rule", "new", "--lang", "go", "late_score")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	dir := filepath.Join(root, "late_score")
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "replace github.com/vigie-edu/vigie => " + repoRoot(t); !strings.Contains(string(gomod), want) {
		t.Errorf("go.mod lacks %q:\n%s", want, gomod)
	}
	build(t, dir, "go", "generate")
	checkScaffold(t, dir, "late_score", "map")

	// The project directory must be new or empty; names are checked.
	_, stderr, code = runVigie(t, root, "rule", "new", "late_score")
	if code != exitFailed || !strings.Contains(stderr, "not empty") {
		t.Errorf("second new: exit %d, stderr:\n%s", code, stderr)
	}
	_, stderr, code = runVigie(t, root, "rule", "new", "Late-Score")
	if code != exitUsage || !strings.Contains(stderr, "invalid rule name") {
		t.Errorf("bad name: exit %d, stderr:\n%s", code, stderr)
	}
	_, stderr, code = runVigie(t, root, "rule", "new", "--lang", "cobol", "x")
	if code != exitUsage || !strings.Contains(stderr, "unknown language") {
		t.Errorf("bad language: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestRuleNewC(t *testing.T) {
	needTool(t, "clang", "apt-get install clang lld")
	needTool(t, "wasm-ld", "apt-get install lld")
	root := t.TempDir()
	dir := filepath.Join(root, "proj")
	stdout, stderr, code := runVigie(t, root, "rule", "new", "--lang", "c", "c_score", "--dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	build(t, dir, "./build.sh")
	checkScaffold(t, dir, "c_score", "map")
}

func TestRuleNewAssemblyScript(t *testing.T) {
	needTool(t, "npm", "apt-get install nodejs npm")
	root := t.TempDir()
	stdout, stderr, code := runVigie(t, root, "rule", "new", "as_score", "--lang", "assemblyscript")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	dir := filepath.Join(root, "as_score")
	npmInstall(t, dir)
	build(t, dir, "npm", "run", "build")
	checkScaffold(t, dir, "as_score", "map")
}

// npmInstall runs npm install in dir. npm fetches the compiler: without
// the registry (or its cache) the toolchain is missing, and the test
// skips, unless VIGIE_REQUIRE_TOOLCHAINS=1.
func npmInstall(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("VIGIE_REQUIRE_TOOLCHAINS") == "1" {
			t.Fatalf("npm install: %v\n%s", err, out)
		}
		t.Skipf("npm install (needs the npm registry or its cache): %v\n%s", err, out)
	}
}

// TestRuleNewGroup scaffolds a group rule in every language, builds it as
// generated with the real toolchain (skipped when missing, as for map
// rules) and runs its own golden cases, which have nulls and several
// groups. The Go one also runs the pipeline of its README on the example
// academy's marks.
func TestRuleNewGroup(t *testing.T) {
	for _, tc := range []struct {
		lang, name string
		tools      [][2]string // tool, how to install it
		build      func(t *testing.T, dir string)
	}{
		{"go", "go_marks", nil, func(t *testing.T, dir string) { build(t, dir, "go", "generate") }},
		{"c", "c_marks", [][2]string{{"clang", "apt-get install clang lld"}, {"wasm-ld", "apt-get install lld"}},
			func(t *testing.T, dir string) { build(t, dir, "./build.sh") }},
		{"assemblyscript", "as_marks", [][2]string{{"npm", "apt-get install nodejs npm"}},
			func(t *testing.T, dir string) {
				npmInstall(t, dir)
				build(t, dir, "npm", "run", "build")
			}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			for _, tool := range tc.tools {
				needTool(t, tool[0], tool[1])
			}
			root := t.TempDir()
			dir := filepath.Join(root, tc.name)
			stdout, stderr, code := runVigie(t, root, "rule", "new", "--kind", "group", "--lang", tc.lang, tc.name)
			if code != exitOK || !strings.Contains(stdout, "created "+tc.lang+" group rule") {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			tc.build(t, dir)
			checkScaffold(t, dir, tc.name, "group")
			if tc.lang == "go" {
				checkGroupPipeline(t, dir, tc.name)
			}
		})
	}
}

// checkGroupPipeline runs the pipeline of the README of the group scaffold
// in dir (with a CSV sink) on examples/data/grades.csv and compares its
// output with the count and mean of every student's non-null marks.
func checkGroupPipeline(t *testing.T, dir, name string) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const indent = "       "
	_, block, ok := strings.Cut(string(readme), indent+"[[source]]\n")
	block, _, ok2 := strings.Cut(block, indent+"vigie validate")
	if !ok || !ok2 {
		t.Fatalf("README.md has no pipeline:\n%s", readme)
	}
	grades := filepath.Join(repoRoot(t), "examples", "data", "grades.csv")
	toml := "[[source]]\n" + strings.ReplaceAll(block, "\n"+indent, "\n")
	toml = strings.Replace(toml, `"examples/data/grades.csv"`, strconv.Quote(grades), 1)
	toml = strings.Replace(toml, `"path/to/`+name+`.wasm"`, strconv.Quote(filepath.Join(dir, name+".wasm")), 1)
	toml = "[pipeline]\nname = \"marks\"\n\n" + toml + `
[[sink]]
name = "marks_csv"
input = "` + name + `"
connector = "csv_file"
[sink.options]
path = "out/marks.csv"
`
	if err := os.WriteFile(filepath.Join(dir, "pipeline.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := runVigie(t, dir, "run"); code != exitOK {
		t.Fatalf("vigie run: exit %d\npipeline.toml:\n%s\nstdout:\n%s\nstderr:\n%s", code, toml, stdout, stderr)
	}
	got := readback.CSV(t, filepath.Join(dir, "out", "marks.csv"))
	if len(got) == 0 || strings.Join(got[0], ",") != "student_id,marks,mean_mark" {
		t.Fatalf("out/marks.csv: header %v", got[:min(len(got), 1)])
	}
	// What the rule must give, computed here from the same file.
	type stats struct {
		n   int
		sum float64
	}
	want := map[string]*stats{}
	for i, rec := range readback.CSV(t, grades) {
		if i == 0 {
			continue
		}
		st := want[rec[0]]
		if st == nil {
			st = &stats{}
			want[rec[0]] = st
		}
		if rec[3] == "" { // student_id,subject,period,mark,status
			continue
		}
		m, err := strconv.ParseFloat(rec[3], 64)
		if err != nil {
			t.Fatal(err)
		}
		st.n++
		st.sum += m
	}
	if len(got)-1 != len(want) {
		t.Errorf("out/marks.csv: %d students, want %d", len(got)-1, len(want))
	}
	var few int
	for _, rec := range got[1:] {
		st := want[rec[0]]
		if st == nil {
			t.Errorf("out/marks.csv: unknown student %q", rec[0])
			continue
		}
		mean, ok := st.sum/float64(st.n), true
		if st.n < 10 { // min_marks in the README: no mean
			few++
			ok = rec[2] == ""
		} else if got, err := strconv.ParseFloat(rec[2], 64); err != nil || math.Abs(got-mean) > 1e-12 {
			ok = false
		}
		if rec[1] != strconv.Itoa(st.n) || !ok {
			t.Errorf("out/marks.csv: %v, want %d marks, mean %v (null below 10 marks)", rec, st.n, mean)
		}
	}
	if few == 0 {
		t.Error("no student has fewer than 10 marks: the null means are not checked")
	}
	t.Logf("%d students, %d with fewer than 10 marks", len(got)-1, few)
}

func TestRuleNewKindFlag(t *testing.T) {
	root := t.TempDir()
	_, stderr, code := runVigie(t, root, "rule", "new", "--kind", "bogus", "x")
	if code != exitUsage || !strings.Contains(stderr, `unknown kind "bogus" (want one of map, group)`) {
		t.Errorf("--kind bogus: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "x")); !os.IsNotExist(err) {
		t.Errorf("--kind bogus created the project directory (stat: %v)", err)
	}
	stdout, _, code := runVigie(t, root, "rule", "new", "-h")
	if code != exitOK || !strings.Contains(stdout, "vigie rule new NAME") || !strings.Contains(stdout, "--kind string") {
		t.Errorf("rule new -h: exit %d, stdout:\n%s", code, stdout)
	}
}

// needTool skips the test when tool is missing, unless
// VIGIE_REQUIRE_TOOLCHAINS=1, when it fails.
func needTool(t *testing.T, tool, install string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err == nil {
		return
	}
	if os.Getenv("VIGIE_REQUIRE_TOOLCHAINS") == "1" {
		t.Fatalf("%s not found (%s) and VIGIE_REQUIRE_TOOLCHAINS=1", tool, install)
	}
	t.Skipf("%s not found: %s", tool, install)
}

func build(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// scaffoldCases is what checkScaffold expects of the golden cases of the
// scaffold of each kind: the summary line, an expected value to break,
// and the diff that the broken value must give.
var scaffoldCases = map[string]struct {
	passed, line, broken string
	diff                 *regexp.Regexp
}{
	"map": {"2 passed, 0 failed", "score = [5.0, 1.5]", "score = [5.0, 1.25]",
		regexp.MustCompile(`(?m)^\s+1\s+score\s+1\.25\s+1\.5\s*$`)},
	"group": {"3 passed, 0 failed", `mean_mark = [12.0, "null", 10.25]`, `mean_mark = [12.0, "null", 10.5]`,
		regexp.MustCompile(`(?m)^\s+2\s+mean_mark\s+10\.5\s+10\.25\s*$`)},
}

// checkScaffold runs a built scaffold of a rule of kind through vigie rule
// test and inspect, then breaks one expected value and checks that the
// test fails.
func checkScaffold(t *testing.T, dir, name, kind string) {
	t.Helper()
	want := scaffoldCases[kind]
	wasm := name + ".wasm"
	stdout, stderr, code := runVigie(t, dir, "rule", "test", wasm, "CASES.toml")
	if code != exitOK || !strings.Contains(stdout, want.passed) {
		t.Fatalf("rule test: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	stdout, stderr, code = runVigie(t, dir, "rule", "inspect", wasm)
	if code != exitOK || !strings.Contains(stdout, "name         "+name+"\n") || !strings.Contains(stdout, "kind         "+kind+"\n") {
		t.Fatalf("rule inspect: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	cases := filepath.Join(dir, "CASES.toml")
	b, err := os.ReadFile(cases)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(b), want.line, want.broken, 1)
	if broken == string(b) {
		t.Fatalf("CASES.toml has no line %q to break", want.line)
	}
	if err := os.WriteFile(cases, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, code = runVigie(t, dir, "rule", "test", wasm, "CASES.toml")
	if code != exitFailed || !want.diff.MatchString(stdout) {
		t.Errorf("broken case: exit %d\n%s", code, stdout)
	}
}

// TestRuleAuthorsGuide runs every command of docs/rule-authors.md, in
// order, in a copy of the absence demo's workspace, with the vigie of
// this test on PATH. Markers before a code block: <!-- setup --> (skipped:
// the test builds vigie and the absence rule itself), <!-- file: PATH -->
// (the block is written to PATH), <!-- exit: N --> (the block's last
// command must exit with N), <!-- needs: TOOL --> (run only when TOOL is
// installed; with npm, a failure skips unless VIGIE_REQUIRE_TOOLCHAINS=1).
func TestRuleAuthorsGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a rule and the absence demo pipeline")
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "rule-authors.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, n := guideScript(t, string(doc))
	if n < 10 {
		t.Fatalf("only %d commands found in the guide", n)
	}
	dir := workspace(t)
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(vigie(t))+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the guide's commands failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"2 passed, 0 failed",             // the scaffold as generated
		"3 passed, 0 failed",             // the edited rule
		"min_marks parameter",            // the group scaffold's cases
		"1     unjustified_rate     0.2", // the broken copy's diff
		"unjustified.wasm conforms to the rule ABI",
		`pipeline "absence_demo" is valid`,
		"unjustified_alert: type=bool",
		"unjustified_rate,unjustified_alert",
		" rows/s",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "VIGIE_GUIDE_NEEDS_FAILED") {
		if os.Getenv("VIGIE_REQUIRE_TOOLCHAINS") == "1" {
			t.Errorf("a block for another language failed:\n%s", out)
		} else {
			t.Logf("a block for another language failed (toolchain or registry missing):\n%s", out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "examples", "pipelines", "out", "unjustified.csv"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(filepath.Join(dir, "examples", "pipelines", "out", "absence.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines, want := strings.Count(string(b), "\n"), strings.Count(string(a), "\n")
	if lines != want || lines < 100 || !strings.Contains(string(b), ",true\n") {
		t.Errorf("out/unjustified.csv: %d lines (out/absence.csv: %d), or no alert", lines, want)
	}
}

// guideScript turns the guide's code blocks into one bash script and
// returns it with the number of commands and files it holds.
func guideScript(t *testing.T, doc string) (string, int) {
	t.Helper()
	marker := regexp.MustCompile(`^<!-- (setup|file|exit|needs)(?:: (\S+))? -->$`)
	var b strings.Builder
	b.WriteString("set -eu\n")
	n := 0
	var kind, arg string
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := marker.FindStringSubmatch(line); m != nil {
			kind, arg = m[1], m[2]
			continue
		}
		lang, ok := strings.CutPrefix(line, "```")
		if !ok || lang == "" {
			continue
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		text := strings.Join(body, "\n")
		switch {
		case kind == "setup" || lang == "text":
		case kind == "file":
			fmt.Fprintf(&b, "cat > %s <<'VIGIE_GUIDE_EOF'\n%s\nVIGIE_GUIDE_EOF\n", arg, text)
			n++
		case lang != "sh":
			t.Fatalf("docs/rule-authors.md:%d: a %s block without <!-- file: PATH -->", i+1, lang)
		case kind == "exit":
			fmt.Fprintf(&b, "set +e\n%s\nrc=$?\nset -e\n[ \"$rc\" = %s ] || { echo \"exit status $rc, want %s\"; exit 99; }\n", text, arg, arg)
			n += len(body)
		case kind == "needs":
			if _, err := exec.LookPath(arg); err != nil {
				if os.Getenv("VIGIE_REQUIRE_TOOLCHAINS") == "1" {
					t.Fatalf("%s not found and VIGIE_REQUIRE_TOOLCHAINS=1", arg)
				}
				t.Logf("%s not found: skipping the block at docs/rule-authors.md:%d", arg, i+1)
				break
			}
			fmt.Fprintf(&b, "if ! ( set -e\n%s\n); then echo VIGIE_GUIDE_NEEDS_FAILED %s; fi\n", text, arg)
			n += len(body)
		default:
			b.WriteString(text + "\n")
			n += len(body)
		}
		kind, arg = "", ""
	}
	return b.String(), n
}
