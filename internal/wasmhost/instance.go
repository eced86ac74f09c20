package wasmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/vigie-edu/vigie/internal/wasmhost/instrument"
	"github.com/vigie-edu/vigie/rules/abi"
)

// Instance is one instantiation of a rule module, with its own memory. It
// is not safe for concurrent use: run one Instance per worker.
// Close it when done.
//
// An error that leaves the guest unusable (a trap, a limit, an exit, the
// context ending during a call) does not end the Instance: its next call
// re-instantiates the module and runs _initialize and vigie_init again,
// transparently. An error after which the guest is intact (a non-zero
// return, a failed output check, too much output) keeps the guest.
type Instance struct {
	module *Module
	name   string // rule name, for errors
	limits Limits
	params []byte // JSON given to vigie_init; nil: do not call it
	logger *slog.Logger

	mod     api.Module // nil when the guest must be (re-)instantiated
	mem     *linearMemory
	rand    *rand.ChaCha8
	fnAlloc api.Function
	fnEval  api.Function
	stack   [2]uint64

	// interrupt and budget are the guest's interrupt flag and budget of
	// checks (package instrument); irqMu orders raising the flag (time limit,
	// caller's context) with the end of a call.
	interrupt api.MutableGlobal
	budget    api.MutableGlobal
	irqMu     sync.Mutex
	irqArmed  bool // a call is running: the flag may be set
	irqFired  bool // the flag was set during this call

	failMsg  string // set by vigie.fail during the current call
	logBytes int64  // logged during the current cycle

	plan  cycle       // reused from batch to batch
	outs  []outColumn // idem
	arrs  []arrow.Array
	colsB []arrow.Array
}

// randSeed seeds every instance's WASI random source, so that random
// numbers are deterministic.
var randSeed = [32]byte{'v', 'i', 'g', 'i', 'e'}

// errLogLimit stops a guest that logs past MaxLogBytes (panicking from a
// host function unwinds the guest; wazero returns the panic as an error).
var errLogLimit = errors.New("log limit")

// NewInstance checks cfg's parameters against the manifest (filling in
// defaults), instantiates the module in a sandbox (no files, arguments,
// environment or sockets; fake clocks; deterministic random numbers; stdout
// and stderr to the log) within cfg's limits (zero fields take
// DefaultLimits), calls _initialize when exported, then vigie_init with the
// parameters as JSON. A module whose memory starts above the MemoryPages
// limit is refused with an error wrapping ErrLimit.
func (m *Module) NewInstance(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	resolved, err := m.Manifest.ResolveParams(cfg.params)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(resolved)
	if err != nil {
		return nil, fmt.Errorf("rule %q: encode params: %w", m.Manifest.Name, err)
	}
	limits := cfg.limits.withDefaults()
	if m.minPages > limits.MemoryPages {
		return nil, fmt.Errorf("rule %q: memory starts at %d pages: %w", m.Manifest.Name, m.minPages, limits.memoryError())
	}
	inst := m.newInstance(m.Manifest.Name, limits, js)
	if err := inst.start(ctx); err != nil {
		return nil, fmt.Errorf("rule %q: %w", m.Manifest.Name, err)
	}
	return inst, nil
}

// newInstance returns an instance that start will instantiate. name tags
// log messages ("" while the manifest is not yet known).
func (m *Module) newInstance(name string, limits Limits, params []byte) *Instance {
	logger := m.rt.logger.With("rule", name, "file", m.Path)
	if name == "" {
		logger = m.rt.logger.With("file", m.Path)
	}
	if !m.hasInit {
		params = nil
	}
	return &Instance{module: m, name: name, limits: limits, params: params, logger: logger}
}

// start instantiates the module, runs _initialize and vigie_init.
func (i *Instance) start(ctx context.Context) error {
	m := i.module
	i.mem = &linearMemory{limit: uint64(i.limits.MemoryPages) * pageSize}
	i.rand = rand.NewChaCha8(randSeed)
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may coexist
		WithStartFunctions().
		WithStdout(logWriter{i, "stdout"}).
		WithStderr(logWriter{i, "stderr"}).
		WithRandSource(i.rand)
	ictx := experimental.WithMemoryAllocator(i.context(ctx), experimental.MemoryAllocatorFunc(
		func(_, _ uint64) experimental.LinearMemory { return i.mem }))
	mod, err := m.rt.rt.InstantiateModule(ictx, m.compiled, cfg)
	if err != nil {
		if i.mem.denied {
			return fmt.Errorf("instantiate: %w", i.limits.memoryError())
		}
		return fmt.Errorf("instantiate: %w", err)
	}
	i.mod = mod
	i.fnAlloc = mod.ExportedFunction(abi.ExportAlloc)
	i.fnEval = mod.ExportedFunction(abi.ExportEval)
	irq, ok1 := mod.ExportedGlobal(instrument.InterruptGlobal).(api.MutableGlobal)
	budget, ok2 := mod.ExportedGlobal(instrument.BudgetGlobal).(api.MutableGlobal)
	if !ok1 || !ok2 {
		_ = mod.Close(ctx)
		i.mod = nil
		return errors.New("instantiate: the interrupt globals are missing")
	}
	i.interrupt, i.budget = irq, budget
	if f := mod.ExportedFunction(abi.ExportInitialize); f != nil {
		if _, err := i.call(ctx, f, abi.ExportInitialize); err != nil {
			i.discard(ctx)
			return err
		}
	}
	if i.params != nil {
		if err := i.init(ctx); err != nil {
			i.discard(ctx)
			return err
		}
	}
	return nil
}

// init calls vigie_init with the parameters JSON.
func (i *Instance) init(ctx context.Context) error {
	ptr, err := i.alloc(ctx, uint32(len(i.params)))
	if err != nil {
		return err
	}
	if !i.mod.Memory().Write(ptr, i.params) {
		return fmt.Errorf("%s returned %d, outside memory", abi.ExportAlloc, ptr)
	}
	_, err = i.call(ctx, i.mod.ExportedFunction(abi.ExportInit), abi.ExportInit, uint64(ptr), uint64(len(i.params)))
	return err
}

// ready re-instantiates the guest when an earlier error left it unusable.
func (i *Instance) ready(ctx context.Context) error {
	if i.mod != nil {
		return nil
	}
	if err := i.start(ctx); err != nil {
		return fmt.Errorf("re-instantiate after an error: %w", err)
	}
	i.logger.Debug("rule re-instantiated after an error")
	return nil
}

// discard closes the guest; the next call re-instantiates it.
func (i *Instance) discard(ctx context.Context) {
	if i.mod != nil {
		_ = i.mod.Close(ctx)
		i.mod = nil
	}
}

// Close releases the instance's memory.
func (i *Instance) Close(ctx context.Context) error {
	if i.mod == nil {
		return nil
	}
	err := i.mod.Close(ctx)
	i.mod = nil
	return err
}

// MemorySize returns the size of the instance's linear memory in bytes (0
// while it awaits re-instantiation).
func (i *Instance) MemorySize() uint32 {
	if i.mod == nil {
		return 0
	}
	return i.mod.Memory().Size()
}

// Limits returns the instance's limits, defaults filled in.
func (i *Instance) Limits() Limits { return i.limits }

type instanceKey struct{}

// context returns ctx carrying i, for the host functions.
func (i *Instance) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, instanceKey{}, i)
}

// call calls an exported function within the time limit. A trap, a panic,
// a limit or, for functions that return a status, a non-zero status become
// an error that carries the message the guest set with vigie.fail. Any
// error but a non-zero status discards the guest.
func (i *Instance) call(ctx context.Context, f api.Function, name string, args ...uint64) (res uint64, err error) {
	if f == nil {
		return 0, fmt.Errorf("missing export %q", name)
	}
	i.failMsg = ""
	i.mem.denied = false
	stack := i.stack[:]
	copy(stack, args)
	cctx, cancel := context.WithTimeout(i.context(ctx), i.limits.Timeout)
	defer cancel()
	// Past the time limit or when the caller gives up, raise the guest's
	// interrupt flag: it traps at its next loop iteration.
	i.irqMu.Lock()
	i.irqArmed, i.irqFired = true, false
	i.irqMu.Unlock()
	stop := context.AfterFunc(cctx, i.raiseInterrupt)
	fired := false
	defer func() {
		stop()
		i.irqMu.Lock()
		i.irqArmed = false
		fired = i.irqFired
		i.irqMu.Unlock()
		if fired && i.mod != nil {
			i.interrupt.Set(0) // raised as the call returned: lower it
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v", name, r)
			i.discard(ctx)
		}
	}()
	if err := f.CallWithStack(cctx, stack); err != nil {
		i.irqMu.Lock()
		i.irqArmed = false
		fired = i.irqFired
		i.irqMu.Unlock()
		err = i.callError(ctx, cctx, name, err, fired)
		i.discard(ctx)
		return 0, err
	}
	if len(f.Definition().ResultTypes()) == 0 {
		return 0, nil
	}
	if (name == abi.ExportEval || name == abi.ExportInit) && uint32(stack[0]) != 0 {
		msg := i.failMsg
		if msg == "" {
			msg = "no message"
		}
		return 0, fmt.Errorf("%s returned %d: %s", name, int32(stack[0]), msg)
	}
	return stack[0], nil
}

// callError explains why a call failed: a limit, the caller's context, an
// exit or a trap (first line only; the wasm stack trace goes to the debug
// log).
func (i *Instance) callError(ctx, cctx context.Context, name string, err error, interrupted bool) error {
	switch {
	case errors.Is(err, errLogLimit):
		return fmt.Errorf("%s: %w", name, i.limits.logError())
	case i.mem.denied:
		return fmt.Errorf("%s: %w", name, i.limits.memoryError())
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", name, ctx.Err())
	case interrupted && cctx.Err() != nil:
		return fmt.Errorf("%s: %w", name, i.limits.timeError())
	}
	msg := err.Error()
	if first, _, ok := strings.Cut(msg, "\n"); ok {
		i.logger.Debug("rule trapped", "call", name, "error", msg)
		msg = first
	}
	return fmt.Errorf("%s: %w", name, &guestError{msg: msg, err: err})
}

// guestError is a trap or an exit of the guest: its message is the first
// line of wazero's (the wasm stack trace goes to the debug log), and it
// unwraps to wazero's error, so that errors.As finds a *sys.ExitError.
type guestError struct {
	msg string
	err error
}

func (e *guestError) Error() string { return e.msg }
func (e *guestError) Unwrap() error { return e.err }

// raiseInterrupt sets the guest's interrupt flag if a call is running.
func (i *Instance) raiseInterrupt() {
	i.irqMu.Lock()
	defer i.irqMu.Unlock()
	if i.irqArmed {
		i.interrupt.Set(1)
		i.budget.Set(0) // the next check takes the slow path
		i.irqFired = true
	}
}

// alloc calls vigie_alloc.
func (i *Instance) alloc(ctx context.Context, size uint32) (uint32, error) {
	p, err := i.call(ctx, i.fnAlloc, abi.ExportAlloc, uint64(size))
	if err != nil {
		return 0, err
	}
	ptr := uint32(p)
	if ptr == 0 || ptr%abi.Alignment != 0 {
		if ptr == 0 && i.mem.denied {
			i.discard(ctx)
			return 0, fmt.Errorf("%s(%d): %w", abi.ExportAlloc, size, i.limits.memoryError())
		}
		return 0, fmt.Errorf("%s(%d) returned %d", abi.ExportAlloc, size, ptr)
	}
	if _, ok := i.mod.Memory().Read(ptr, size); !ok {
		return 0, fmt.Errorf("%s(%d) returned %d, outside memory", abi.ExportAlloc, size, ptr)
	}
	return ptr, nil
}

// ErrWrongKind is returned by EvalMap for a group rule and by EvalGroup for
// a map rule.
var ErrWrongKind = errors.New("wrong kind of rule for this call")

// EvalMap evaluates one batch with a map rule: it copies the bound inputs of
// rec into the instance, calls vigie_eval, checks the outputs and returns a
// new record made of rec's columns followed by the outputs (and the
// provenance columns when the binding asks for them), allocated from mem;
// its schema is b.OutputSchema(). The caller owns the result and must
// Release it; rec is not released. A failing rule (non-zero return, trap,
// limit, invalid output) is an error of that batch.
func (i *Instance) EvalMap(ctx context.Context, b *Binding, rec arrow.RecordBatch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if err := i.check(b, rec, abi.KindMap); err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	outs, err := i.eval(ctx, b, rec, nil, n, mem)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", i.name, err)
	}
	cols := i.colsB[:0]
	for _, k := range b.keep {
		cols = append(cols, rec.Column(k))
	}
	kept := len(cols)
	cols = append(cols, outs...)
	cols = b.appendProvenance(cols, n, mem)
	res := arrowRecord(b.output, cols, rec.NumRows())
	for _, a := range cols[kept:] {
		a.Release()
	}
	clear(cols)
	clear(outs)
	i.colsB = cols[:0]
	return res, nil
}

// EvalGroup evaluates one batch with a group rule. The rows of rec are
// grouped contiguously: group g is rows offsets[g] to offsets[g+1]
// (offsets has num_groups+1 entries, the first 0, the last rec.NumRows(),
// non-decreasing; empty groups are allowed). It returns one row per group
// holding ONLY the rule's outputs (and the provenance columns when the
// binding asks for them), with schema b.OutputSchema(): the engine
// prepends the group key columns itself (b.GroupOutputSchema gives the
// schema of the result). The caller owns the result and must Release it.
func (i *Instance) EvalGroup(ctx context.Context, b *Binding, rec arrow.RecordBatch, offsets []uint32, mem memory.Allocator) (arrow.RecordBatch, error) {
	if err := i.check(b, rec, abi.KindGroup); err != nil {
		return nil, err
	}
	if err := checkGroupOffsets(offsets, rec.NumRows()); err != nil {
		return nil, fmt.Errorf("rule %q: %w", i.name, err)
	}
	numGroups := len(offsets) - 1
	outs, err := i.eval(ctx, b, rec, offsets, numGroups, mem)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", i.name, err)
	}
	cols := b.appendProvenance(append(i.colsB[:0], outs...), numGroups, mem)
	res := arrowRecord(b.output, cols, int64(numGroups))
	for _, a := range cols {
		a.Release()
	}
	clear(cols)
	clear(outs)
	i.colsB = cols[:0]
	return res, nil
}

func checkGroupOffsets(offsets []uint32, numRows int64) error {
	if len(offsets) == 0 {
		return errors.New("group offsets: empty, want num_groups+1 entries")
	}
	if offsets[0] != 0 {
		return fmt.Errorf("group offsets: first is %d, want 0", offsets[0])
	}
	if last := offsets[len(offsets)-1]; int64(last) != numRows {
		return fmt.Errorf("group offsets: last is %d, want num_rows %d", last, numRows)
	}
	for g := 1; g < len(offsets); g++ {
		if offsets[g] < offsets[g-1] {
			return fmt.Errorf("group offsets: entry %d (%d) is below entry %d (%d)", g, offsets[g], g-1, offsets[g-1])
		}
	}
	return nil
}

// check refuses a binding of another module, a record of another schema
// and a call for the wrong kind of rule.
func (i *Instance) check(b *Binding, rec arrow.RecordBatch, kind string) error {
	if k := i.module.Manifest.Kind; k != kind {
		return fmt.Errorf("rule %q: it is a %s rule: %w", i.name, k, ErrWrongKind)
	}
	if b.module != i.module {
		return fmt.Errorf("rule %q: binding is for another module (%s)", i.name, b.module.Path)
	}
	if !rec.Schema().Equal(b.upstream) {
		return fmt.Errorf("rule %q: record schema differs from the bound schema", i.name)
	}
	return nil
}

// eval runs one cycle: copy in, vigie_eval, check and copy out numOut rows
// per output. groups are the group offsets (nil for a map rule).
func (i *Instance) eval(ctx context.Context, b *Binding, rec arrow.RecordBatch, groups []uint32, numOut int, mem memory.Allocator) ([]arrow.Array, error) {
	if err := i.ready(ctx); err != nil {
		return nil, err
	}
	i.logBytes = 0
	i.rand.Seed(randSeed) // every cycle draws the same numbers, whatever the instance's past
	plan := &i.plan
	plan.layout(b, rec, groups, numOut)
	base, err := i.alloc(ctx, uint32(plan.size))
	if err != nil {
		return nil, err
	}
	buf, _ := i.mod.Memory().Read(base, uint32(plan.size))
	plan.write(buf, base, b, rec, groups)
	plan.release()
	if _, err := i.call(ctx, i.fnEval, abi.ExportEval, uint64(base+plan.inPtr), uint64(base+plan.outPtr)); err != nil {
		return nil, err
	}
	return i.readOutputs(base+plan.outPtr, numOut, mem)
}

// logged counts n bytes of log against the cycle's limit; past it, it
// stops the guest.
func (i *Instance) logged(n int) {
	i.logBytes += int64(n)
	if i.logBytes > i.limits.MaxLogBytes {
		panic(errLogLimit)
	}
}

// hostLog implements vigie.log.
func hostLog(ctx context.Context, m api.Module, level, ptr, n uint32) {
	i, _ := ctx.Value(instanceKey{}).(*Instance)
	if i == nil {
		return
	}
	i.logged(int(n))
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
	msg, ok := m.Memory().Read(ptr, min(n, maxFailBytes))
	if !ok {
		i.failMsg = fmt.Sprintf("(vigie.fail message at %d, %d bytes, is outside memory)", ptr, n)
		return
	}
	i.failMsg = strings.ToValidUTF8(string(msg), "\uFFFD")
}

// maxFailBytes caps the message of vigie.fail.
const maxFailBytes = 4 << 10

// logWriter sends an instance's stdout or stderr to its logger, one message
// per write, counted against MaxLogBytes.
type logWriter struct {
	i      *Instance
	stream string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.i.logged(len(p))
	w.i.logger.Info(strings.TrimRight(string(p), "\n"), "stream", w.stream)
	return len(p), nil
}
