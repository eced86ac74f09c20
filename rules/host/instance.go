package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/vigie-edu/vigie/rules/abi"
)

// Instance is one instantiation of a rule module, with its own memory. It
// is not safe for concurrent use: run one Instance per worker. Close it when
// done.
type Instance struct {
	module  *Module
	mod     api.Module
	logger  *slog.Logger
	failMsg string // set by vigie.fail during the current call
}

// randSeed seeds every instance's WASI random source, so that random
// numbers are deterministic.
var randSeed = [32]byte{'v', 'i', 'g', 'i', 'e'}

// NewInstance checks params against the manifest (filling in defaults),
// instantiates the module in a sandbox (no files, arguments, environment or
// sockets; fake clocks; deterministic random numbers; stdout and stderr to
// the log), calls _initialize when exported, then vigie_init with the
// parameters as JSON.
func (m *Module) NewInstance(ctx context.Context, params map[string]any) (*Instance, error) {
	resolved, err := m.Manifest.ResolveParams(params)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(resolved)
	if err != nil {
		return nil, fmt.Errorf("rule %q: encode params: %w", m.Manifest.Name, err)
	}
	inst, err := m.instantiate(ctx, m.Manifest.Name)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", m.Manifest.Name, err)
	}
	if err := inst.init(ctx, js); err != nil {
		_ = inst.Close(ctx)
		return nil, fmt.Errorf("rule %q: %w", m.Manifest.Name, err)
	}
	return inst, nil
}

// instantiate creates an instance and runs _initialize. name tags log
// messages ("" while the manifest is not yet known).
func (m *Module) instantiate(ctx context.Context, name string) (*Instance, error) {
	logger := m.rt.logger.With("rule", name, "file", m.Path)
	if name == "" {
		logger = m.rt.logger.With("file", m.Path)
	}
	inst := &Instance{module: m, logger: logger}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithStartFunctions().
		WithStdout(logWriter{logger, "stdout"}).
		WithStderr(logWriter{logger, "stderr"}).
		WithRandSource(rand.NewChaCha8(randSeed))
	mod, err := m.rt.rt.InstantiateModule(inst.context(ctx), m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	inst.mod = mod
	if mod.ExportedFunction(abi.ExportInitialize) != nil {
		if _, err := inst.call(ctx, abi.ExportInitialize); err != nil {
			_ = mod.Close(ctx)
			return nil, err
		}
	}
	return inst, nil
}

// init calls vigie_init, when exported, with the parameters JSON.
func (i *Instance) init(ctx context.Context, params []byte) error {
	if !i.module.hasInit {
		return nil
	}
	ptr, err := i.alloc(ctx, uint32(len(params)))
	if err != nil {
		return err
	}
	if !i.mod.Memory().Write(ptr, params) {
		return fmt.Errorf("%s returned %d, outside memory", abi.ExportAlloc, ptr)
	}
	_, err = i.call(ctx, abi.ExportInit, uint64(ptr), uint64(len(params)))
	return err
}

// Close releases the instance's memory.
func (i *Instance) Close(ctx context.Context) error { return i.mod.Close(ctx) }

// MemorySize returns the size of the instance's linear memory in bytes.
func (i *Instance) MemorySize() uint32 { return i.mod.Memory().Size() }

type instanceKey struct{}

// context returns ctx carrying i, for the host functions.
func (i *Instance) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, instanceKey{}, i)
}

// call calls an exported function. A trap, a panic or, for functions that
// return a status, a non-zero status become an error that carries the
// message the guest set with vigie.fail.
func (i *Instance) call(ctx context.Context, name string, args ...uint64) (res uint64, err error) {
	f := i.mod.ExportedFunction(name)
	if f == nil {
		return 0, fmt.Errorf("missing export %q", name)
	}
	i.failMsg = ""
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v", name, r)
		}
	}()
	out, err := f.Call(i.context(ctx), args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return 0, nil
	}
	if (name == abi.ExportEval || name == abi.ExportInit) && uint32(out[0]) != 0 {
		msg := i.failMsg
		if msg == "" {
			msg = "no message"
		}
		return 0, fmt.Errorf("%s returned %d: %s", name, int32(out[0]), msg)
	}
	return out[0], nil
}

// alloc calls vigie_alloc.
func (i *Instance) alloc(ctx context.Context, size uint32) (uint32, error) {
	p, err := i.call(ctx, abi.ExportAlloc, uint64(size))
	if err != nil {
		return 0, err
	}
	ptr := uint32(p)
	if ptr == 0 || ptr%abi.Alignment != 0 {
		return 0, fmt.Errorf("%s(%d) returned %d", abi.ExportAlloc, size, ptr)
	}
	if _, ok := i.mod.Memory().Read(ptr, size); !ok {
		return 0, fmt.Errorf("%s(%d) returned %d, outside memory", abi.ExportAlloc, size, ptr)
	}
	return ptr, nil
}

// ErrGroupNotSupported is returned by EvalMap for group rules, which the
// host does not run yet.
var ErrGroupNotSupported = errors.New("group rules are not supported yet")

// EvalMap evaluates one batch with a map rule: it copies the bound inputs of
// rec into the instance, calls vigie_eval, checks the outputs and returns a
// new record made of rec's columns followed by the outputs, allocated from
// mem. The caller owns the result and must Release it; rec is not released.
// A failing rule (non-zero return, trap, invalid output) is an error of
// that batch.
func (i *Instance) EvalMap(ctx context.Context, b *Binding, rec arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	name := i.module.Manifest.Name
	if i.module.Manifest.Kind != abi.KindMap {
		return nil, fmt.Errorf("rule %q: %w", name, ErrGroupNotSupported)
	}
	if b.module != i.module {
		return nil, fmt.Errorf("rule %q: binding is for another module (%s)", name, b.module.Path)
	}
	if !rec.Schema().Equal(b.upstream) {
		return nil, fmt.Errorf("rule %q: record schema differs from the bound schema", name)
	}
	outs, err := i.eval(ctx, b, rec, nil, int(rec.NumRows()), mem)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", name, err)
	}
	cols := append(rec.Columns()[:len(rec.Columns()):len(rec.Columns())], outs...)
	res := arrowRecord(b.output, cols, rec.NumRows())
	for _, a := range outs {
		a.Release()
	}
	return res, nil
}

// eval runs one cycle: copy in, vigie_eval, check and copy out numOut rows
// per output. groups are the group offsets (nil for a map rule).
func (i *Instance) eval(ctx context.Context, b *Binding, rec arrow.RecordBatch, groups []uint32, numOut int, mem memory.Allocator) ([]arrow.Array, error) {
	plan := planCycle(b, rec, groups, numOut)
	base, err := i.alloc(ctx, uint32(plan.size))
	if err != nil {
		return nil, err
	}
	buf, _ := i.mod.Memory().Read(base, uint32(plan.size))
	plan.write(buf, base, b, rec, groups)
	if _, err := i.call(ctx, abi.ExportEval, uint64(base+plan.inPtr), uint64(base+plan.outPtr)); err != nil {
		return nil, err
	}
	return readOutputs(i.mod.Memory(), base+plan.outPtr, i.module.Manifest.Outputs, numOut, mem)
}

// hostLog implements vigie.log.
func hostLog(ctx context.Context, m api.Module, level, ptr, n uint32) {
	i, _ := ctx.Value(instanceKey{}).(*Instance)
	if i == nil {
		return
	}
	msg, ok := m.Memory().Read(ptr, n)
	if !ok {
		i.logger.Warn("vigie.log: message outside memory", "ptr", ptr, "len", n)
		return
	}
	lvl := slog.LevelInfo
	switch level {
	case abi.LevelDebug:
		lvl = slog.LevelDebug
	case abi.LevelWarn:
		lvl = slog.LevelWarn
	case abi.LevelError:
		lvl = slog.LevelError
	}
	i.logger.Log(ctx, lvl, string(msg))
}

// hostFail implements vigie.fail.
func hostFail(ctx context.Context, m api.Module, ptr, n uint32) {
	i, _ := ctx.Value(instanceKey{}).(*Instance)
	if i == nil {
		return
	}
	msg, ok := m.Memory().Read(ptr, n)
	if !ok {
		i.failMsg = fmt.Sprintf("(vigie.fail message at %d, %d bytes, is outside memory)", ptr, n)
		return
	}
	i.failMsg = string(msg)
}

// logWriter sends a module's stdout or stderr to the logger, one message per
// write.
type logWriter struct {
	logger *slog.Logger
	stream string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.Info(string(bytes.TrimRight(p, "\n")), "stream", w.stream)
	return len(p), nil
}
