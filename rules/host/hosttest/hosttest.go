// Package hosttest holds test helpers for packages that run rules: it builds
// Go rules (written with rules/sdk/vigie) to WebAssembly and makes rule
// runtimes with a temporary compilation cache.
package hosttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// builds caches the built modules of this test binary, by directory.
var builds sync.Map // absolute dir -> *build

type build struct {
	once sync.Once
	wasm []byte
	err  error
	out  string
}

// BuildGoRule builds the Go rule in dir (a main package) with
// GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared and returns the path
// of the module, written to t.TempDir(). Each directory is built once per
// test binary; later calls copy the cached bytes. It fails the test when
// the build fails.
func BuildGoRule(t testing.TB, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("build rule %s: %v", dir, err)
	}
	v, _ := builds.LoadOrStore(abs, &build{})
	b := v.(*build)
	out := filepath.Join(t.TempDir(), filepath.Base(abs)+".wasm")
	b.once.Do(func() {
		cmd := exec.Command(goTool(), "build", "-buildmode=c-shared", "-o", out, ".")
		cmd.Dir = abs
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		output, err := cmd.CombinedOutput()
		b.out = string(output)
		if b.err = err; err == nil {
			b.wasm, b.err = os.ReadFile(out)
		}
	})
	if b.err != nil {
		t.Fatalf("build rule %s: %v\n%s", dir, b.err, b.out)
	}
	if _, err := os.Stat(out); err != nil { // built by an earlier test
		if err := os.WriteFile(out, b.wasm, 0o644); err != nil {
			t.Fatalf("build rule %s: %v", dir, err)
		}
	}
	return out
}

// goTool returns the go command: the one on PATH, else the one of the
// toolchain that built the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	// A test binary runs where its toolchain built it, so the deprecation's
	// concern (a binary copied to another machine) does not apply.
	//lint:ignore SA1019 the GOROOT of the toolchain that built this test binary
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
