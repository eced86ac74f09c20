package wasmhost_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/sys"

	"github.com/vigie-edu/vigie/internal/wasmhost"
)

const wI32, wI64 = 0x7f, 0x7e

// fn is a function of a hand-assembled module: an import of module.name or
// an export named name, with its parameter and result types.
type fn struct {
	module, name    string
	params, results []byte
	code            []byte // instructions of an export, before end; nil: return zeros
}

var goodExports = []fn{
	{name: "vigie_abi_version", results: []byte{wI32}},
	{name: "vigie_manifest", results: []byte{wI64}},
	{name: "vigie_alloc", params: []byte{wI32}, results: []byte{wI32}},
	{name: "vigie_eval", params: []byte{wI32, wI32}, results: []byte{wI32}},
}

// assemble returns a module with the given imported and exported
// functions (each export returns zeros) and an exported memory.
func assemble(imports, exports []fn) []byte {
	vec := func(items ...[]byte) []byte {
		b := binary.AppendUvarint(nil, uint64(len(items)))
		for _, it := range items {
			b = append(b, it...)
		}
		return b
	}
	name := func(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }
	section := func(id byte, body []byte) []byte {
		return append(append([]byte{id}, binary.AppendUvarint(nil, uint64(len(body)))...), body...)
	}
	var types, imps, funcs, exps, codes [][]byte
	typeOf := func(f fn) []byte {
		types = append(types, append(append([]byte{0x60}, vec(bytesOf(f.params)...)...), vec(bytesOf(f.results)...)...))
		return binary.AppendUvarint(nil, uint64(len(types)-1))
	}
	for _, f := range imports {
		imps = append(imps, append(append(append(name(f.module), name(f.name)...), 0x00), typeOf(f)...))
	}
	for i, f := range exports {
		funcs = append(funcs, typeOf(f))
		exps = append(exps, append(append(name(f.name), 0x00), binary.AppendUvarint(nil, uint64(len(imports)+i))...))
		body := append([]byte{0}, f.code...) // no locals
		for _, r := range f.results[:len(f.results)*btoi(f.code == nil)] {
			if r == wI64 {
				body = append(body, 0x42, 0)
			} else {
				body = append(body, 0x41, 0)
			}
		}
		body = append(body, 0x0b)
		codes = append(codes, append(binary.AppendUvarint(nil, uint64(len(body))), body...))
	}
	exps = append(exps, append(name("memory"), 0x02, 0x00))
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec(types...))...)
	m = append(m, section(2, vec(imps...))...)
	m = append(m, section(3, vec(funcs...))...)
	m = append(m, section(5, vec([]byte{0x00, 0x01}))...) // one memory, min 1 page
	m = append(m, section(7, vec(exps...))...)
	m = append(m, section(10, vec(codes...))...)
	return m
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func bytesOf(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// TestLoadChecksSignatures: Load checks a module's imports and exports
// against the ABI's table (rules/abi) and names the function, its
// signature and the one wanted.
func TestLoadChecksSignatures(t *testing.T) {
	with := func(extra ...fn) []fn { return append(append([]fn{}, goodExports...), extra...) }
	without := func(name string) []fn {
		var out []fn
		for _, f := range goodExports {
			if f.name != name {
				out = append(out, f)
			}
		}
		return out
	}
	wrongEval := without("vigie_eval")
	wrongEval = append(wrongEval, fn{name: "vigie_eval", params: []byte{wI32}, results: []byte{wI32}})
	tests := []struct {
		name             string
		imports, exports []fn
		want             string
	}{
		{"conforming shape", nil, goodExports, "abi version 0, want 1"}, // past the shape checks
		{"vigie imports", []fn{{module: "vigie", name: "log", params: []byte{wI32, wI32, wI32}}, {module: "vigie", name: "fail", params: []byte{wI32, wI32}}}, goodExports,
			"abi version 0, want 1"},
		{"missing required export", nil, without("vigie_eval"), `missing export "vigie_eval"`},
		{"required export", nil, wrongEval, `export "vigie_eval" has signature (i32) -> (i32), want (i32, i32) -> (i32)`},
		{"optional export", nil, with(fn{name: "vigie_init"}), `export "vigie_init" has signature () -> (), want (i32, i32) -> (i32)`},
		{"import", []fn{{module: "vigie", name: "fail", params: []byte{wI32}}}, goodExports,
			`import "vigie.fail" has signature (i32) -> (), want (i32, i32) -> ()`},
		{"unknown import", []fn{{module: "vigie", name: "clock", results: []byte{wI64}}}, goodExports, `forbidden import "vigie.clock"`},
	}
	ctx := context.Background()
	rt := newRuntime(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.wasm")
			if err := os.WriteFile(path, assemble(tt.imports, tt.exports), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := rt.Load(ctx, path, wasmhost.NewLoadConfig())
			if err == nil {
				m.Close(ctx)
				t.Fatal("Load succeeded")
			}
			if want := "rule " + path + ": " + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %v, want it to start with %q", err, want)
			}
		})
	}
}

// TestExitKeepsItsCause: a guest that exits fails its call with the first
// line of wazero's error, which the error still wraps (errors.As finds
// the exit code).
func TestExitKeepsItsCause(t *testing.T) {
	exit := fn{module: "wasi_snapshot_preview1", name: "proc_exit", params: []byte{wI32}}
	initialize := fn{name: "_initialize", code: []byte{0x41, 3, 0x10, 0}} // proc_exit(3)
	path := filepath.Join(t.TempDir(), "exit.wasm")
	exports := append(append([]fn{}, goodExports...), initialize)
	if err := os.WriteFile(path, assemble([]fn{exit}, exports), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err := newRuntime(t).Load(ctx, path, wasmhost.NewLoadConfig())
	want := "rule " + path + ": _initialize: module closed with exit_code(3)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var exitErr *sys.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("errors.As(err, *sys.ExitError) = %v, want exit code 3", exitErr)
	}
}
