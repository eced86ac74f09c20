// Package instrument rewrites a WebAssembly module so that a host can
// interrupt it cheaply: it adds an interrupt flag and a budget of checks
// (two exported mutable i32 globals) and a check at every function start
// and loop head (in the dispatch loops of Go's code generator, on the
// backward jumps instead, and Go's forward jumps become direct branches:
// see dispatch). internal/wasmhost rewrites every rule with Rewrite before
// compiling it, and stops a call by raising the flag.
package instrument

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Interrupting a runaway guest.
//
// wazero can stop a guest whose context is done (CloseOnContextDone), but
// it does so with a call out of the compiled code to the Go runtime at
// every loop iteration: about 30 ns each, and the call spills every live
// register, which costs most in the tight vector loops rules are made of
// (a SIMD rule ran 2.4 times slower with it). Instead, before compiling, the
// host adds to each rule two mutable i32 globals, an interrupt flag and a
// budget of iterations (exported as InterruptGlobal and BudgetGlobal), and
// at the start of every function and the head of every loop:
//
//	budget -= 1
//	if budget <= 0 {
//	    budget = CheckEvery
//	    memory.grow 0 (drop)          ;; a trip through Go
//	    if interrupt { unreachable }  ;; trap
//	}
//
// On the fast path that is a load, a subtraction, a store and a branch
// never taken. To stop a call (its time limit, or the caller's context),
// the host sets the flag and zeroes the budget from another goroutine: the
// guest traps at its next check.
//
// The trip through Go (wazero runs memory.grow in Go, even to grow by 0)
// matters as much as the flag: compiled guest code cannot be preempted by
// the Go scheduler, so a guest that never left it would hold its P through
// a garbage collection's stop-the-world, and the goroutine that must raise
// the flag could never run: the process would hang. Leaving every
// CheckEvery iterations bounds that wait.
//
// The rewrite keeps every index (the globals come after the module's own),
// so the module's behaviour is unchanged (a direct jump lands where the
// dispatch loop would have sent it, with the same value in its local);
// its sha256 (pinning, provenance) is the hash of the file as written.

// InterruptGlobal and BudgetGlobal are the names under which the
// instrumented module exports its interrupt flag and its budget; a rule
// may not export them itself.
const (
	InterruptGlobal = "__vigie_interrupt"
	BudgetGlobal    = "__vigie_budget"
)

// CheckEvery is the number of checks between two trips through Go, and
// the budget the instrumented module starts with.
const CheckEvery = 1 << 14

// Section ids (WebAssembly core spec, 5.5).
const (
	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// Rewrite returns wasm with the interrupt and budget globals and the
// checks at function starts and loop heads.
// It reads the module's structure only as far as it must and refuses what
// it does not understand (wazero would refuse it too: the features it
// enables are the WebAssembly 2.0 ones).
func Rewrite(wasm []byte) ([]byte, error) { return RewriteWith(wasm, Options{}) }

// Options change what RewriteWith does, to measure what each part costs
// or saves; the zero value is Rewrite. A module rewritten with any other
// value is not for running rules.
type Options struct {
	// NoChecks adds the globals and their exports but no check: the
	// module cannot be interrupted.
	NoChecks bool
	// EveryLoop puts a check at every loop head, dispatch loops included,
	// and leaves Go's jumps as they are (the rewrite before dispatch
	// loops were recognised).
	EveryLoop bool
	// NoDirectJumps leaves Go's forward jumps going through the dispatch
	// loop (see dispatch) instead of branching to their segment.
	NoDirectJumps bool
}

// RewriteWith is Rewrite with options.
func RewriteWith(wasm []byte, o Options) ([]byte, error) { return rewrite(wasm, o) }

func rewrite(wasm []byte, o Options) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, errors.New("not a WebAssembly 1.0 binary module")
	}
	type section struct {
		id   byte
		body []byte
	}
	var secs []section
	r := &reader{b: wasm, pos: 8}
	for r.pos < len(r.b) {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		// DWARF offsets would no longer match the code: drop it (the
		// "name" section, which traps use, is kept).
		if id == secCustom {
			name := (&reader{b: body}).name()
			if strings.HasPrefix(name, ".debug_") {
				continue
			}
		}
		secs = append(secs, section{id, body})
	}

	importedGlobals, definedGlobals, memories := 0, 0, 0
	var haveGlobal, haveExport bool
	for _, s := range secs {
		var err error
		switch s.id {
		case secImport:
			var m int
			importedGlobals, m, err = countImports(s.body)
			memories += m
		case secMemory:
			r := &reader{b: s.body}
			memories += int(r.u32())
			err = r.err
		case secGlobal:
			r := &reader{b: s.body}
			definedGlobals, err, haveGlobal = int(r.u32()), r.err, true
		case secExport:
			err, haveExport = checkExports(s.body), true
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
	}
	irq := uint32(importedGlobals + definedGlobals)
	budget := irq + 1

	// The new globals: (mut i32) 0, and (mut i32) CheckEvery.
	globalEntries := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41}
	globalEntries = appendSLEB(globalEntries, CheckEvery)
	globalEntries = append(globalEntries, 0x0b)
	var exportEntries []byte
	for k, name := range []string{InterruptGlobal, BudgetGlobal} {
		exportEntries = appendName(exportEntries, name)
		exportEntries = append(exportEntries, 0x03) // global
		exportEntries = binary.AppendUvarint(exportEntries, uint64(irq)+uint64(k))
	}
	check := checkCode(irq, budget, memories > 0)
	if o.NoChecks {
		check = nil
	}

	out := append([]byte(nil), wasm[:8]...)
	put := func(id byte, body []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	// Sections must keep their order: a missing global section goes before
	// the first of export, start, element, data count, code, data; a
	// missing export section before the first of the rest.
	addedGlobal, addedExport := haveGlobal, haveExport
	for _, s := range secs {
		if !addedGlobal && slices.Contains([]byte{secExport, secStart, secElement, secDataCount, secCode, secData}, s.id) {
			put(secGlobal, append([]byte{2}, globalEntries...))
			addedGlobal = true
		}
		if !addedExport && slices.Contains([]byte{secStart, secElement, secDataCount, secCode, secData}, s.id) {
			put(secExport, append([]byte{2}, exportEntries...))
			addedExport = true
		}
		switch s.id {
		case secGlobal:
			put(s.id, appendVecEntries(s.body, 2, globalEntries))
		case secExport:
			put(s.id, appendVecEntries(s.body, 2, exportEntries))
		case secCode:
			body, err := instrumentCode(s.body, check, o)
			if err != nil {
				return nil, err
			}
			put(s.id, body)
		default:
			put(s.id, s.body)
		}
	}
	if !addedGlobal {
		put(secGlobal, append([]byte{2}, globalEntries...))
	}
	if !addedExport {
		put(secExport, append([]byte{2}, exportEntries...))
	}
	return out, nil
}

// appendVecEntries returns a vector section body with n more entries.
func appendVecEntries(body []byte, n int, entries []byte) []byte {
	r := &reader{b: body}
	count := r.u32()
	out := binary.AppendUvarint(nil, uint64(count)+uint64(n))
	out = append(out, body[r.pos:]...)
	return append(out, entries...)
}

// appendSLEB appends v as a signed LEB128 number.
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// checkCode returns the check inserted at function starts and loop heads
// (see above); without a memory there is no trip through Go (such a
// module is not a rule: it cannot export "memory").
func checkCode(irq, budget uint32, memory bool) []byte {
	g := func(op byte, idx uint32) []byte { return binary.AppendUvarint([]byte{op}, uint64(idx)) }
	var c []byte
	c = append(c, g(0x23, budget)...)           // global.get $budget
	c = append(c, 0x41, 0x01, 0x6b)             // i32.const 1, i32.sub
	c = append(c, g(0x24, budget)...)           // global.set $budget
	c = append(c, g(0x23, budget)...)           // global.get $budget
	c = append(c, 0x41, 0x00, 0x4c, 0x04, 0x40) // i32.const 0, i32.le_s, if
	c = appendSLEB(append(c, 0x41), CheckEvery) // i32.const CheckEvery
	c = append(c, g(0x24, budget)...)           // global.set $budget
	if memory {
		c = append(c, 0x41, 0x00, 0x40, 0x00, 0x1a) // i32.const 0, memory.grow 0, drop
	}
	c = append(c, g(0x23, irq)...)        // global.get $interrupt
	c = append(c, 0x04, 0x40, 0x00, 0x0b) // if unreachable end
	return append(c, 0x0b)                // end
}

func appendName(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// countImports returns the numbers of imported globals and memories.
func countImports(body []byte) (globals, memories int, err error) {
	r := &reader{b: body}
	n := r.count()
	for range n {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function: type index
			r.u32()
		case 0x01: // table: reference type, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
			memories++
		case 0x03: // global: value type, mutability
			r.byte()
			r.byte()
			globals++
		default:
			return 0, 0, fmt.Errorf("import of unknown kind 0x%02x", kind)
		}
		if r.err != nil {
			return 0, 0, r.err
		}
	}
	return globals, memories, r.err
}

func checkExports(body []byte) error {
	r := &reader{b: body}
	n := r.count()
	for range n {
		if name := r.name(); name == InterruptGlobal || name == BudgetGlobal {
			return fmt.Errorf("the module exports %q, a name the host reserves", name)
		}
		r.byte()
		r.u32()
	}
	return r.err
}

// instrumentCode rewrites the code section (see instrumentBody).
func instrumentCode(body []byte, check []byte, o Options) ([]byte, error) {
	r := &reader{b: body}
	n := r.count()
	if r.err != nil {
		return nil, fmt.Errorf("code section: %w", r.err)
	}
	out := binary.AppendUvarint(make([]byte, 0, len(body)+len(body)/8), uint64(n))
	var fn []byte
	for k := range n {
		size := int(r.u32())
		code := r.bytes(size)
		if r.err != nil {
			return nil, fmt.Errorf("function body %d: %w", k, r.err)
		}
		var err error
		fn, err = instrumentBody(fn[:0], code, check, o)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %w", k, err)
		}
		out = binary.AppendUvarint(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if r.pos != len(body) {
		return nil, errors.New("code section: trailing bytes")
	}
	return out, nil
}

// instrumentBody appends to out the function body code with check at its
// start and after every loop header, except for the dispatch loops of Go's
// code generator (see dispatch), whose checks go on their backward
// branches instead and whose forward jumps become direct branches.
// o.EveryLoop and o.NoDirectJumps undo either, to measure them.
func instrumentBody(out, code, check []byte, o Options) ([]byte, error) {
	r := &reader{b: code}
	groups := r.count()
	for range groups {
		r.u32()  // count
		r.byte() // value type
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	out = append(out, code[:r.pos]...)
	out = append(out, check...)
	from := r.pos // code[from:r.pos] is not yet copied
	// frames are the open blocks, loops and ifs, the function's own
	// block first.
	frames := []frame{{}}
	// opening is the dispatch loop whose blocks come next, openingLeft
	// the number of them not yet opened.
	var opening *dispatch
	openingLeft := 0
	// The last two instructions, for "i32.const K; local.set X; br".
	var prevConst struct {
		at  int
		val uint32
		ok  bool
	}
	var prevSet struct {
		at       int
		local, k uint32
		ok       bool
	}
	for r.pos < len(code) && r.err == nil {
		at := r.pos
		op := r.byte()
		immAt := r.pos
		if err := r.skipImmediates(op); err != nil {
			return nil, fmt.Errorf("instruction 0x%02x at byte %d: %w", op, at, err)
		}
		constOK, setOK := prevConst.ok && prevConst.at == at, prevSet.ok && prevSet.at == at
		switch op {
		case 0x02, 0x04: // block, if
			f := frame{}
			if op == 0x02 && opening != nil {
				// the next dispatch block of the loop just opened
				openingLeft--
				f.segmentEnd, f.label = opening, uint32(openingLeft)
				if openingLeft == 0 {
					opening = nil
				}
			}
			frames = append(frames, f)
		case 0x03: // loop
			d := dispatchLoop(code, immAt)
			if d == nil || o.EveryLoop {
				out = append(out, code[from:r.pos]...)
				out = append(out, check...)
				from = r.pos
			}
			frames = append(frames, frame{loop: true, dispatch: d})
			if d != nil {
				opening, openingLeft = d, d.blocks
			}
		case 0x0b: // end
			if len(frames) == 0 {
				return nil, fmt.Errorf("end at byte %d closes nothing", at)
			}
			if d := frames[len(frames)-1].segmentEnd; d != nil {
				d.closed = frames[len(frames)-1].label + 1
			}
			frames = frames[:len(frames)-1]
		case 0x0c, 0x0d, 0x0e: // br, br_if, br_table
			backward := false
			direct := -1 // the depth of the segment's block, for a direct jump
			for _, depth := range branchDepths(code[immAt:r.pos], op) {
				if int(depth) >= len(frames) {
					return nil, fmt.Errorf("branch at byte %d: depth %d out of range", at, depth)
				}
				f := &frames[len(frames)-1-int(depth)]
				switch {
				case !f.loop || f.dispatch == nil || o.EveryLoop:
					// a block (forward), or a loop whose head checks
				case op == 0x0c && setOK && prevSet.local == f.dispatch.local &&
					f.dispatch.segment(prevSet.k) >= f.dispatch.closed:
					// to a segment of the dispatch loop further on: its
					// block is open, n-l levels inside the loop
					direct = int(depth) - f.dispatch.blocks + int(f.dispatch.segment(prevSet.k))
				default:
					backward = true
				}
			}
			switch {
			case backward:
				out = append(out, code[from:at]...)
				out = append(out, check...)
				from = at
			case direct >= 0 && !o.NoDirectJumps:
				out = append(out, code[from:at]...)
				out = binary.AppendUvarint(append(out, 0x0c), uint64(direct))
				from = r.pos
			}
		case 0x41: // i32.const
			v := (&reader{b: code, pos: immAt}).s32()
			prevConst.at, prevConst.val, prevConst.ok = r.pos, uint32(v), true
		case 0x21: // local.set
			if constOK {
				prevSet.at, prevSet.local, prevSet.k, prevSet.ok = r.pos, (&reader{b: code, pos: immAt}).u32(), prevConst.val, true
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(frames) != 0 {
		return nil, errors.New("unterminated function body")
	}
	return append(out, code[from:]...), nil
}

// frame is an open block, loop or if of a function body.
type frame struct {
	loop bool
	// dispatch is set on a dispatch loop (see dispatchLoop).
	dispatch *dispatch
	// segmentEnd is set on a dispatch block: its end starts the segment of
	// label label.
	segmentEnd *dispatch
	label      uint32
}

// Go's dispatch loops.
//
// Go's WebAssembly code generator makes every function with jumps one
// loop, entered at the top and branched back to for every jump, forward
// or backward: the loop opens n empty blocks, and a br_table on a local
// (the PC_B parameter) jumps to the end of one of them; the code after the
// end of the block of label l (the innermost is 0) is segment l, and
// a jump to segment l is "i32.const K; local.set PC_B; br loop" where the
// table maps K to l. A check at the loop head would run at every jump of
// the Go code, even the forward ones (an if, a switch), where a loop in
// the Go code only needs it on its backward jumps. So in a dispatch loop
// the check goes before every branch to the loop, except a jump whose
// constant selects a segment further on in the code (one whose block is
// still open). This keeps the guarantee: within one call, a run of
// instructions that does not branch backward only moves forward in the
// code, so it is bounded by the function's size; every backward branch is
// checked, and every function start is.
//
// Such a forward jump then branches to its segment's block directly
// ("br" to the block instead of the loop), after setting the local as
// before: the same place, without a trip through the loop head and the
// br_table's indirect jump. Backward jumps still go through the loop:
// structured WebAssembly can only branch backward to a loop head.
type dispatch struct {
	local  uint32   // the local the br_table reads
	labels []uint32 // the table: labels[K], else def
	def    uint32
	blocks int // the number of dispatch blocks
	closed uint32
}

// segment returns the segment the dispatch loop jumps to for value k.
func (d *dispatch) segment(k uint32) uint32 {
	if int64(k) < int64(len(d.labels)) {
		return d.labels[k]
	}
	return d.def
}

// dispatchLoop returns the dispatch loop whose block type starts at
// code[at] (right after the loop opcode), or nil when the loop is not one:
// "loop (block)^n local.get X br_table l* d", the loop and the blocks
// without parameters or results (a branch to a loop with parameters
// would pass values that a direct jump would not), every label below n.
func dispatchLoop(code []byte, at int) *dispatch {
	if at >= len(code) || code[at] != 0x40 {
		return nil
	}
	r := &reader{b: code, pos: at + 1}
	n := 0
	for r.pos < len(code) && code[r.pos] == 0x02 && r.pos+1 < len(code) && code[r.pos+1] == 0x40 {
		r.pos += 2
		n++
	}
	if n == 0 || r.byte() != 0x20 {
		return nil
	}
	local := r.u32()
	if r.byte() != 0x0e {
		return nil
	}
	count := int(r.u32())
	if r.err != nil || count > len(code) {
		return nil
	}
	d := &dispatch{local: local, blocks: n, labels: make([]uint32, count)}
	for k := range d.labels {
		d.labels[k] = r.u32()
	}
	d.def = r.u32()
	if r.err != nil || d.def >= uint32(n) || slices.ContainsFunc(d.labels, func(l uint32) bool { return l >= uint32(n) }) {
		return nil
	}
	return d
}

// branchDepths returns the label depths of a br, br_if or br_table whose
// immediates are imm.
func branchDepths(imm []byte, op byte) []uint32 {
	r := &reader{b: imm}
	if op != 0x0e {
		return []uint32{r.u32()}
	}
	n := int(r.u32())
	if n > len(imm) {
		return nil
	}
	ds := make([]uint32, 0, n+1)
	for range n + 1 {
		ds = append(ds, r.u32())
	}
	return ds
}

// reader decodes the parts of the binary format the rewrite needs. The
// first error sticks; reads after it return zeros.
type reader struct {
	b   []byte
	pos int
	err error
}

var errTruncated = errors.New("unexpected end")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.pos = len(r.b)
}

func (r *reader) byte() byte {
	if r.pos >= len(r.b) {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

// count reads the length of a vector whose entries take a byte or more
// each: a length past the bytes left is refused, so that a hostile module
// cannot make a loop over its entries run billions of times.
func (r *reader) count() int {
	n := r.u32()
	if uint64(n) > uint64(len(r.b)-r.pos) {
		r.fail(errTruncated)
		return 0
	}
	return int(n)
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.pos {
		r.fail(errTruncated)
		return nil
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b
}

// leb skips a LEB128 number of at most max bytes.
func (r *reader) leb(max int) {
	for k := 0; k < max; k++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail(errors.New("LEB128 number too long"))
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(errors.New("LEB128 number too long"))
	return 0
}

// s32 reads a signed LEB128 number of at most 5 bytes.
func (r *reader) s32() int32 {
	var v int64
	shift := 0
	for k := 0; k < 5; k++ {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v)
		}
	}
	r.fail(errors.New("LEB128 number too long"))
	return 0
}

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// memarg skips a memory instruction's alignment and offset.
func (r *reader) memarg() {
	r.u32()
	r.u32()
}

// blockType skips a block type: empty, a value type, or a type index.
func (r *reader) blockType() {
	if r.pos < len(r.b) {
		switch r.b[r.pos] {
		case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
			r.pos++
			return
		}
	}
	r.leb(5) // s33
}

// skipImmediates skips the immediates of opcode op (WebAssembly 2.0:
// core, sign extension, non-trapping conversions, bulk memory, reference
// types, SIMD).
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
		r.blockType()
	case op == 0x0c || op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		n := int(r.u32())
		for range n + 1 {
			r.u32()
			if r.err != nil {
				break
			}
		}
	case op == 0x10: // call
		r.u32()
	case op == 0x11: // call_indirect: type, table
		r.u32()
		r.u32()
	case op == 0x1c: // select with types
		n := int(r.u32())
		r.bytes(n)
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41: // i32.const
		r.leb(5)
	case op == 0x42: // i64.const
		r.leb(10)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b ||
		(op >= 0x45 && op <= 0xc4) || op == 0xd1: // no immediates
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		return r.skipFC()
	case op == 0xfd:
		return r.skipSIMD()
	default:
		return errors.New("unknown or unsupported opcode")
	}
	return r.err
}

func (r *reader) skipFC() error {
	switch sub := r.u32(); {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init: data index, memory
		r.u32()
		r.u32()
	case sub == 9: // data.drop
		r.u32()
	case sub == 10: // memory.copy: two memories
		r.u32()
		r.u32()
	case sub == 11: // memory.fill
		r.u32()
	case sub == 12 || sub == 14: // table.init, table.copy
		r.u32()
		r.u32()
	case sub == 13 || (sub >= 15 && sub <= 17): // elem.drop, table.grow/size/fill
		r.u32()
	default:
		return fmt.Errorf("unknown 0xfc instruction %d", sub)
	}
	return r.err
}

func (r *reader) skipSIMD() error {
	switch sub := r.u32(); {
	case sub <= 11 || sub == 92 || sub == 93: // loads, stores
		r.memarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.byte()
	case sub <= 255:
		// every other SIMD instruction has no immediate
	default:
		return fmt.Errorf("unknown SIMD instruction %d", sub)
	}
	return r.err
}
