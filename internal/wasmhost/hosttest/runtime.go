package hosttest

import (
	"context"
	"testing"

	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// NewRuntime returns a rule runtime whose compilation cache is in
// t.TempDir(), closed when the test ends. It fails the test when the
// runtime cannot be made.
func NewRuntime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(ctx) })
	return rt
}
