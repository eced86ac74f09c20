package instrument

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// wasmModule assembles a module from (id, body) sections.
func wasmModule(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s[0])
		m = binary.AppendUvarint(m, uint64(len(s)-1))
		m = append(m, s[1:]...)
	}
	return m
}

func sec(id byte, body ...byte) []byte { return append([]byte{id}, body...) }

// codeBody returns a function body (no locals) as a code section entry.
func codeBody(instrs ...byte) []byte {
	body := append([]byte{0}, instrs...)
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// spin is a module exporting "spin" (a loop that never ends by itself),
// "once" (the same loop, left after one iteration) and its own global
// "own" (7); when bare is true it has neither a global nor an export
// section of its own.
func spin(bare bool) []byte {
	types := sec(1, 1, 0x60, 0, 0) // () -> ()
	funcs := sec(3, 2, 0, 0)
	loop := codeBody(0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)             // loop br 0 end
	once := codeBody(0x03, 0x40, 0x41, 0x00, 0x0d, 0x00, 0x0b, 0x0b) // loop (br_if 0 (i32.const 0)) end
	code := sec(10, append(append([]byte{2}, loop...), once...)...)
	if bare {
		return wasmModule(types, funcs, code)
	}
	// one global of its own, exports "spin" and "once"
	globals := sec(6, 1, 0x7f, 0x00, 0x41, 0x07, 0x0b)
	var exports []byte
	exports = append(exports, 3)
	exports = appendName(exports, "spin")
	exports = append(exports, 0x00, 0x00)
	exports = appendName(exports, "once")
	exports = append(exports, 0x00, 0x01)
	exports = appendName(exports, "own")
	exports = append(exports, 0x03, 0x00) // global 0
	return wasmModule(types, funcs, oneMemory, globals, sec(7, exports...), code)
}

// oneMemory is a memory section: one memory of one page. Every rule has a
// memory, and the check's trip through Go (memory.grow 0) needs one.
var oneMemory = sec(5, 1, 0x00, 0x01)

func instantiate(t *testing.T, wasm []byte) (api.Module, api.MutableGlobal) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { _ = rt.Close(ctx) })
	out, err := Rewrite(wasm)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := mod.ExportedGlobal(InterruptGlobal).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable global %q", InterruptGlobal)
	}
	if g.Get() != 0 {
		t.Fatalf("interrupt flag starts at %d", g.Get())
	}
	if b, ok := mod.ExportedGlobal(BudgetGlobal).(api.MutableGlobal); !ok || b.Get() != CheckEvery {
		t.Fatalf("budget global %v", b)
	}
	return mod, g
}

// collect runs garbage collections one after the other until the test
// ends: a spinning guest must let the collector stop the world (the
// check's trip through Go), or the timer that raises its interrupt flag
// never runs and the whole process hangs.
func collect(t *testing.T) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
}

func TestInstrumentInterruptsLoops(t *testing.T) {
	for _, bare := range []bool{false, true} {
		mod, irq := instantiate(t, spin(bare))
		if bare {
			continue // nothing to call: the sections were added in order
		}
		ctx := context.Background()
		if _, err := mod.ExportedFunction("once").Call(ctx); err != nil {
			t.Fatalf("once: %v", err)
		}
		// The module's own global keeps its index and value.
		if g := mod.ExportedGlobal("own"); g == nil || g.Get() != 7 {
			t.Fatalf("the module's own global: %v", g)
		}
		time.AfterFunc(50*time.Millisecond, func() { irq.Set(1) })
		done := make(chan error, 1)
		go func() { _, err := mod.ExportedFunction("spin").Call(ctx); done <- err }()
		collect(t)
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("spin: %v, want a trap", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("spin was not interrupted")
		}
	}
}

func TestInstrumentRefuses(t *testing.T) {
	good := spin(false)
	var reserved []byte
	reserved = append(reserved, 1)
	reserved = appendName(reserved, InterruptGlobal)
	reserved = append(reserved, 0x00, 0x00)
	for name, tc := range map[string]struct {
		wasm []byte
		want string
	}{
		"text":      {[]byte("(module)"), "not a WebAssembly 1.0 binary module"},
		"truncated": {good[:len(good)-3], "unexpected end"},
		"exception": {wasmModule(sec(1, 1, 0x60, 0, 0), sec(3, 1, 0), sec(10, append([]byte{1}, codeBody(0x06, 0x40, 0x0b, 0x0b)...)...)),
			"instruction 0x06 at byte 1: unknown or unsupported opcode"},
		"reserved": {wasmModule(sec(1, 1, 0x60, 0, 0), sec(3, 1, 0), sec(7, reserved...), sec(10, append([]byte{1}, codeBody(0x0b)...)...)),
			`exports "__vigie_interrupt", a name the host reserves`},
	} {
		if _, err := Rewrite(tc.wasm); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, tc.want)
		}
	}
}

// corpus returns the committed rule modules of the repository.
func corpus(t testing.TB) map[string][]byte {
	files := map[string][]byte{}
	for _, glob := range []string{"../testdata/*.wasm", "../../../examples/rules/*/*.wasm", "../../../rules/sdk/wat/*/*.wasm"} {
		paths, _ := filepath.Glob(glob)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[p] = b
		}
	}
	if len(files) < 10 {
		t.Fatalf("only %d modules found", len(files))
	}
	return files
}

// TestInstrumentCorpus: every committed module instruments into a module
// that wazero accepts, with the same functions, and instrumenting is
// deterministic.
func TestInstrumentCorpus(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for path, wasm := range corpus(t) {
		orig, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			continue // a deliberately broken test module
		}
		out, err := Rewrite(wasm)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		again, _ := Rewrite(wasm)
		if !bytes.Equal(out, again) {
			t.Errorf("%s: instrumenting twice gave two results", path)
		}
		inst, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Errorf("%s: instrumented module refused: %v", path, err)
			continue
		}
		if len(inst.ExportedFunctions()) != len(orig.ExportedFunctions()) || len(inst.ImportedFunctions()) != len(orig.ImportedFunctions()) {
			t.Errorf("%s: functions changed", path)
		}
	}
}

// fuzzSeedMaxBytes is the largest module of the corpus FuzzInstrument
// starts from.
const fuzzSeedMaxBytes = 64 << 10

func FuzzInstrument(f *testing.F) {
	for _, wasm := range corpus(f) {
		// Go-compiled rules (megabytes) are left to TestInstrumentCorpus:
		// under the fuzzer's coverage instrumentation wazero compiles one
		// for longer than the fuzzer waits for a worker, which it then
		// reports as hung, and mutating megabytes finds nothing.
		if len(wasm) <= fuzzSeedMaxBytes {
			f.Add(wasm)
		}
	}
	f.Add(spin(true))
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Rewrite(wasm) // never panics
		if err != nil {
			return // refused before wazero sees it
		}
		if _, err := rt.CompileModule(ctx, wasm); err != nil {
			return
		}
		if _, err := rt.CompileModule(ctx, out); err != nil {
			t.Fatalf("wazero accepts the module but not its instrumented form: %v", err)
		}
	})
}

// goDispatch is a function body (param i32: PC_B, as Go's code generator
// makes them) with a dispatch loop of three segments; seg0, seg1 and seg2
// are the code that ends each segment, jump is "i32.const K; local.set 0;
// br" to the loop from a segment.
func goDispatch(seg0, seg1, seg2 []byte) []byte {
	b := []byte{0x02, 0x40, 0x03, 0x40, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40, // block loop block block block
		0x20, 0x00, 0x0e, 0x03, 0x00, 0x01, 0x02, 0x02, 0x0b} // local.get 0, br_table 0 1 2 2, end
	b = append(append(b, seg0...), 0x0b)
	b = append(append(b, seg1...), 0x0b)
	b = append(b, seg2...)
	return append(b, 0x0b, 0x0b, 0x0b) // loop, block, function
}

// jump returns "i32.const k; local.set 0; br depth".
func jump(k, depth byte) []byte { return []byte{0x41, k, 0x21, 0x00, 0x0c, depth} }

// goSpinModule exports "go_spin" (param i32): a goDispatch loop that, from
// segment 0, goes forward to 2, back to 1, back to 0, and so on forever.
func goSpinModule(body []byte) []byte {
	types := sec(1, 1, 0x60, 1, 0x7f, 0) // (i32) -> ()
	funcs := sec(3, 1, 0)
	var exports []byte
	exports = append(exports, 1)
	exports = appendName(exports, "go_spin")
	exports = append(exports, 0x00, 0x00)
	code := sec(10, append([]byte{1}, codeBody(body...)...)...)
	return wasmModule(types, funcs, oneMemory, sec(7, exports...), code)
}

var goSpin = goDispatch(jump(2, 2), jump(0, 1), jump(1, 0))

// TestInstrumentPlacement counts the checks the rewrite puts in one
// function: one at its start, one at the head of an ordinary loop, and in
// Go's dispatch loops one before each branch back to the loop except the
// jumps to a segment further on.
func TestInstrumentPlacement(t *testing.T) {
	check := checkCode(0, 1, true) // no globals of its own, a memory
	for name, tc := range map[string]struct {
		body []byte
		want int
	}{
		"plain loop":                    {[]byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b}, 2},
		"go, spin":                      {goSpin, 3}, // start, seg1 -> seg0, seg2 -> seg1
		"go, forward only":              {goDispatch(jump(2, 2), []byte{0x0f}, nil), 1},
		"go, to the same segment":       {goDispatch(nil, nil, jump(2, 0)), 2},
		"go, br_if":                     {goDispatch(append([]byte{0x41, 0x02, 0x21, 0x00, 0x41, 0x01}, 0x0d, 0x02), nil, nil), 2},
		"go, not right after local.set": {goDispatch(append([]byte{0x41, 0x02, 0x21, 0x00, 0x01}, 0x0c, 0x02), nil, nil), 2},
		"go, const out of the table":    {goDispatch(jump(9, 2), nil, nil), 1}, // the default, segment 2
		"go, another local":             {goDispatch([]byte{0x41, 0x02, 0x21, 0x01, 0x0c, 0x02}, nil, nil), 2},
		"go, loop with a result":        {[]byte{0x03, 0x7f, 0x02, 0x40, 0x02, 0x40, 0x20, 0x00, 0x0e, 0x00, 0x01, 0x0b, 0x41, 0x01, 0x21, 0x00, 0x0c, 0x01, 0x0b, 0x41, 0x00, 0x0b, 0x1a, 0x0b}, 2},
		"go, label past the blocks":     {[]byte{0x03, 0x40, 0x02, 0x40, 0x20, 0x00, 0x0e, 0x00, 0x01, 0x0b, 0x0b, 0x0b}, 2},
		"go, every jump backward":       {goDispatch(nil, jump(0, 1), append(jump(1, 0), 0x0c, 0x00)), 4},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := Rewrite(goSpinModule(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Count(out, check); got != tc.want {
				t.Errorf("%d checks, want %d", got, tc.want)
			}
			everyLoop, err := RewriteWith(goSpinModule(tc.body), Options{EveryLoop: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Count(everyLoop, check); got != 2 {
				t.Errorf("EveryLoop: %d checks, want 2", got)
			}
		})
	}
}

// TestInstrumentInterruptsGoLoops: a loop of Go's code generator, whose
// backward jumps go through the dispatch loop, is interrupted.
func TestInstrumentInterruptsGoLoops(t *testing.T) {
	mod, irq := instantiate(t, goSpinModule(goSpin))
	time.AfterFunc(50*time.Millisecond, func() { irq.Set(1) })
	done := make(chan error, 1)
	go func() { _, err := mod.ExportedFunction("go_spin").Call(context.Background(), 0); done <- err }()
	collect(t)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("go_spin: %v, want a trap", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("go_spin was not interrupted")
	}
}

// TestInstrumentDirectJumps: Go's forward jumps, rewritten to branch to
// their segment directly, still go where the dispatch loop sent them. The
// function (param PC_B) appends a digit per segment it runs to a number:
// from segment 0, 1 then 3 (forward) then 2 (backward) then returns;
// from segment 1, 2; from segment 2, 3 then 2.
func TestInstrumentDirectJumps(t *testing.T) {
	digit := func(d byte) []byte { // acc = acc*10 + d
		return []byte{0x20, 0x01, 0x41, 0x0a, 0x6c, 0x41, d, 0x6a, 0x21, 0x01}
	}
	var seg0, seg1, seg2 []byte
	seg0 = append(append(seg0, digit(1)...), jump(2, 2)...)
	seg1 = append(append(seg1, digit(2)...), 0x20, 0x01, 0x0f) // return acc
	seg2 = append(append(seg2, digit(3)...), jump(1, 0)...)
	body := goDispatch(seg0, seg1, seg2)
	body = append(body[:len(body)-3], 0x0b, 0x0b, 0x00, 0x0b) // loop end, block end, unreachable, function end
	code := append([]byte{0x01, 0x01, 0x7f}, body...)         // one i32 local: acc
	code = append(binary.AppendUvarint(nil, uint64(len(code))), code...)
	var exports []byte
	exports = append(exports, 1)
	exports = appendName(exports, "digits")
	exports = append(exports, 0x00, 0x00)
	wasm := wasmModule(sec(1, 1, 0x60, 1, 0x7f, 1, 0x7f), sec(3, 1, 0), sec(7, exports...), sec(10, append([]byte{1}, code...)...))

	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	orig, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := instantiate(t, wasm)
	out, err := Rewrite(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, jump(2, 1)) {
		t.Error("the forward jump of segment 0 does not branch to segment 2's block")
	}
	for pcb, want := range []uint64{132, 2, 32} {
		a, err1 := orig.ExportedFunction("digits").Call(ctx, uint64(pcb))
		b, err2 := direct.ExportedFunction("digits").Call(ctx, uint64(pcb))
		if err1 != nil || err2 != nil || a[0] != want || b[0] != want {
			t.Errorf("digits(%d) = %v (%v) and rewritten %v (%v), want %d", pcb, a, err1, b, err2, want)
		}
	}
}

// TestRewriteRefusesHugeCounts: a vector length past the bytes left (a
// section's entries, a function's local groups) is refused at once. The
// fuzzer found a 4 KB module whose local groups claimed 2^32 - 1 entries:
// Rewrite looped over them for 36 s before it failed, time a hostile rule
// would have taken from the host at every load.
func TestRewriteRefusesHugeCounts(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32 - 1
	section := func(id byte, body []byte) []byte {
		return append(append([]byte{id}, byte(len(body))), body...)
	}
	module := func(sections ...[]byte) []byte {
		m := []byte("\x00asm\x01\x00\x00\x00")
		for _, s := range sections {
			m = append(m, s...)
		}
		return m
	}
	cases := map[string][]byte{
		"imports":      module(section(secImport, huge)),
		"exports":      module(section(secExport, huge)),
		"functions":    module(section(secCode, huge)),
		"local groups": module(section(secCode, append([]byte{1, byte(len(huge) + 1)}, append(huge, 0x7f)...))),
	}
	for name, wasm := range cases {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Rewrite(wasm)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("Rewrite accepted a vector longer than its section")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Rewrite still running after 10 s: it loops over the claimed entries")
			}
		})
	}
}
