// Package conformance holds the golden cases that every rule SDK's example
// passes (see README.md) and the test that builds each example and runs it
// through the host on them. With -module and -cases it runs a third
// party's module instead:
//
//	go test ./rules/conformance -run TestModule -args -module rule.wasm -cases rule.cases.toml
package conformance

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
	"github.com/vigie-edu/vigie/rules/ruletest"
)

var (
	moduleFlag = flag.String("module", "", "a rule module (.wasm) to run on -cases (TestModule)")
	casesFlag  = flag.String("cases", "", "a CASES.toml file for -module (TestModule)")
)

// Repository paths, from this folder.
const (
	sdkDir        = "../sdk"
	absenceCases  = "absence.cases.toml"
	typesCases    = "types.cases.toml"
	emptyCases    = "empty.cases.toml"
	goAbsenceDir  = "../../examples/rules/absence"
	goEchoDir     = "../../internal/wasmhost/testdata/echo"
	watDoubleDir  = "../sdk/wat/double"
	requireEnvVar = "VIGIE_REQUIRE_TOOLCHAINS"
)

// guest is an example rule of one SDK and how to build it.
type guest struct {
	name  string // test name: sdk/rule
	build func(t *testing.T) string
}

func absenceGuests() []guest {
	return []guest{
		{"go/absence", func(t *testing.T) string { return hosttest.BuildGoRule(t, goAbsenceDir) }},
		{"c/absence", func(t *testing.T) string { return buildC(t, "absence") }},
		{"assemblyscript/absence", func(t *testing.T) string { return buildAS(t, "absence") }},
		{"rust/absence", func(t *testing.T) string { return buildRust(t, "absence") }},
	}
}

func echoGuests() []guest {
	return []guest{
		{"go/echo", func(t *testing.T) string { return hosttest.BuildGoRule(t, goEchoDir) }},
		{"wat/echo", func(t *testing.T) string { return buildWAT(t, "echo") }},
		{"c/echo", func(t *testing.T) string { return buildC(t, "echo") }},
		{"assemblyscript/echo", func(t *testing.T) string { return buildAS(t, "echo") }},
	}
}

func TestAbsence(t *testing.T) {
	for _, g := range absenceGuests() {
		t.Run(g.name, func(t *testing.T) { runCases(t, g.build(t), absenceCases) })
	}
}

func TestTypes(t *testing.T) {
	for _, g := range echoGuests() {
		t.Run(g.name, func(t *testing.T) { runCases(t, g.build(t), typesCases) })
	}
}

// TestDouble runs the smallest rule, written in WAT from rule-abi.md alone.
func TestDouble(t *testing.T) {
	runCases(t, buildWAT(t, "double"), filepath.Join(watDoubleDir, "double.cases.toml"))
}

// TestModule runs a third party's module on a third party's cases.
func TestModule(t *testing.T) {
	if *moduleFlag == "" || *casesFlag == "" {
		t.Skip("give -module FILE.wasm -cases FILE.toml")
	}
	runCases(t, *moduleFlag, *casesFlag)
}

// newRunner returns a ruletest.Runner with its compilation cache in
// t.TempDir() and the allocator mem (nil: the runner's own), closed when
// the test ends.
func newRunner(t testing.TB, mem memory.Allocator) *ruletest.Runner {
	t.Helper()
	ctx := context.Background()
	cfg := ruletest.NewConfig().WithCacheDir(t.TempDir())
	if mem != nil {
		cfg = cfg.WithAllocator(mem)
	}
	r, err := ruletest.NewRunner(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(ctx) })
	return r
}

func runCases(t *testing.T, module, cases string) {
	t.Helper()
	s, err := ruletest.Load(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	r, err := newRunner(t, mem).Run(ctx, module, s)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Passed() {
		t.Errorf("%d of %d cases failed:\n%s", r.Failed(), len(r.Cases), r)
	} else {
		t.Logf("%s: %d cases passed", r.Rule, len(r.Cases))
	}
}

// needTool returns the path of a build tool, or skips the test (fails it
// when VIGIE_REQUIRE_TOOLCHAINS=1) with the command that installs it.
func needTool(t *testing.T, path, install string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found: %s", path, install)
	if os.Getenv(requireEnvVar) == "1" {
		t.Fatalf("%s (%s=1)", msg, requireEnvVar)
	}
	t.Skip(msg)
	return ""
}

// builds caches built modules for the test binary, by key.
var builds sync.Map

type built struct {
	once sync.Once
	wasm []byte
	err  error
}

// buildOnce runs build (which writes out) once per key and copies the
// result to a new file for each caller.
func buildOnce(t *testing.T, key string, build func(out string) error) string {
	t.Helper()
	v, _ := builds.LoadOrStore(key, &built{})
	b := v.(*built)
	out := filepath.Join(t.TempDir(), filepath.Base(key)+".wasm")
	b.once.Do(func() {
		if b.err = build(out); b.err == nil {
			b.wasm, b.err = os.ReadFile(out)
		}
	})
	if b.err != nil {
		t.Fatalf("build %s: %v", key, b.err)
	}
	if err := os.WriteFile(out, b.wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes", key, len(b.wasm))
	return out
}

func run(dir string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// buildWAT builds rules/sdk/wat/NAME/NAME.wat with wat2wasm.
func buildWAT(t *testing.T, name string) string {
	wat2wasm := needTool(t, "wat2wasm", "apt-get install wabt")
	dir := filepath.Join(sdkDir, "wat", name)
	return buildOnce(t, "wat/"+name, func(out string) error {
		return run(dir, wat2wasm, name+".wat", "-o", out)
	})
}

// buildC builds rules/sdk/c/examples/NAME/NAME.c with the SDK's build.sh.
func buildC(t *testing.T, name string) string {
	return buildCFile(t, "c/"+name, filepath.Join(sdkDir, "c", "examples", name), name+".c")
}

// buildCFile builds dir/file (dir from this folder) with the C SDK's
// build.sh, run in dir.
func buildCFile(t *testing.T, key, dir, file string) string {
	needTool(t, "clang", "apt-get install clang lld")
	needTool(t, "wasm-ld", "apt-get install clang lld")
	script, err := filepath.Abs(filepath.Join(sdkDir, "c", "build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return buildOnce(t, key, func(out string) error {
		return run(dir, "sh", script, out, file)
	})
}

// buildAS builds rules/sdk/assemblyscript/examples/NAME.ts with the SDK's
// build script (npm ci first: node_modules/.bin/asc).
func buildAS(t *testing.T, name string) string {
	node, dir := needAS(t)
	return buildOnce(t, "assemblyscript/"+name, func(out string) error {
		abs, err := filepath.Abs(out)
		if err != nil {
			return err
		}
		return run(dir, node, "build.mjs", "examples/"+name+".ts", abs)
	})
}

// buildASFile builds the AssemblyScript rule src (a path from this folder)
// with the SDK's build script, as examples/FILE.ts of a temporary folder
// that holds a copy of the SDK's assembly/vigie.ts: build.mjs names the
// SDK's abort function by its path from the working directory, so src
// imports "../assembly/vigie" as the examples do.
func buildASFile(t *testing.T, key, src string) string {
	node, sdk := needAS(t)
	return buildOnce(t, key, func(out string) error {
		tmp := t.TempDir()
		for from, to := range map[string]string{
			filepath.Join(sdk, "assembly", "vigie.ts"): filepath.Join(tmp, "assembly", "vigie.ts"),
			src: filepath.Join(tmp, "examples", filepath.Base(src)),
		} {
			b, err := os.ReadFile(from)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				return err
			}
		}
		script, err := filepath.Abs(filepath.Join(sdk, "build.mjs"))
		if err != nil {
			return err
		}
		return run(tmp, node, script, "examples/"+filepath.Base(src), out)
	})
}

// needAS returns node and the AssemblyScript SDK's folder, or skips the
// test (fails it when VIGIE_REQUIRE_TOOLCHAINS=1).
func needAS(t *testing.T) (node, dir string) {
	t.Helper()
	node = needTool(t, "node", "apt-get install nodejs npm")
	dir = filepath.Join(sdkDir, "assemblyscript")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "assemblyscript")); err != nil {
		msg := "assemblyscript not installed: (cd rules/sdk/assemblyscript && npm ci)"
		if os.Getenv(requireEnvVar) == "1" {
			t.Fatalf("%s (%s=1)", msg, requireEnvVar)
		}
		t.Skip(msg)
	}
	return node, dir
}

// buildRust builds rules/sdk/rust/examples/NAME.rs with the SDK's build.sh
// (Debian's rustc and its wasm32 standard library).
func buildRust(t *testing.T, name string) string {
	return buildRustFile(t, "rust/"+name, "examples/"+name+".rs")
}

// buildRustFile builds file (a path from rules/sdk/rust) with the Rust
// SDK's build.sh.
func buildRustFile(t *testing.T, key, file string) string {
	needTool(t, "/usr/bin/rustc", "apt-get install rustc libstd-rust-dev-wasm32")
	if _, err := os.Stat("/usr/lib/rustlib/wasm32-unknown-unknown"); err != nil {
		msg := "no wasm32 standard library for /usr/bin/rustc: apt-get install libstd-rust-dev-wasm32"
		if os.Getenv(requireEnvVar) == "1" {
			t.Fatalf("%s (%s=1)", msg, requireEnvVar)
		}
		t.Skip(msg)
	}
	dir := filepath.Join(sdkDir, "rust")
	return buildOnce(t, key, func(out string) error {
		return run(dir, "sh", "build.sh", out, file)
	})
}
