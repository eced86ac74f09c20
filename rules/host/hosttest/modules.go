package hosttest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Module returns the absolute path of name.wasm among the test modules of
// rules/host/testdata (loop, memory_bomb, trap, out_of_bounds, bad_utf8,
// fail, ...), found beside this package's source so that any test
// directory can use it. It fails the test when there is no such module
// (or no source path to find it from, as in a test built with -trimpath).
func Module(t testing.TB, name string) string {
	t.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatalf("test module %s: no source location for package hosttest", name)
	}
	path := filepath.Join(filepath.Dir(here), "..", "testdata", name+".wasm")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("test module %s: %v", name, err)
	}
	return path
}

// PoisonCSV is a CSV of n rows with columns student_id and x whose x are
// all negative: every hostile module of rules/host/testdata misbehaves on
// a batch whose first x is negative, so on every batch and every row.
func PoisonCSV(n int) string {
	var b strings.Builder
	b.WriteString("student_id,x\n")
	for i := range n {
		fmt.Fprintf(&b, "S%05d,%d\n", i, -1-i)
	}
	return b.String()
}
