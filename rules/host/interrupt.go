package host

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Interrupting a runaway guest.
//
// wazero can stop a guest whose context is done (CloseOnContextDone), but
// it does so with a call out of the compiled code to the Go runtime at
// every loop iteration: about 30 ns each, and the call spills every live
// register, which costs most in the tight vector loops rules are made of
// (a SIMD rule ran 2.4 times slower with it). Instead, before compiling, the
// host adds to each rule one mutable i32 global, exported as
// InterruptGlobal, and at the head of every loop the instructions
//
//	global.get $interrupt  if  unreachable  end
//
// a load, a test and a branch that is never taken. To stop a call (its time
// limit, or the caller's context), the host sets the global to 1 from
// another goroutine: the guest traps at its next loop iteration. Code
// without loops ends by itself, and recursion ends at the stack limit. This
// is the technique of wasmtime's epoch interruption.
//
// The rewrite keeps every index (the global comes after the module's own),
// so the module's behaviour is unchanged; its sha256 (pinning, provenance)
// is the hash of the file as written.

// InterruptGlobal is the name under which the instrumented module exports
// its interrupt flag; a rule may not export that name itself.
const InterruptGlobal = "__vigie_interrupt"

// Section ids (WebAssembly core spec, 5.5).
const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// instrument returns wasm with the interrupt global and the loop checks.
// It reads the module's structure only as far as it must and refuses what
// it does not understand (wazero would refuse it too: the features it
// enables are the WebAssembly 2.0 ones).
func instrument(wasm []byte) ([]byte, error) {
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

	importedGlobals, definedGlobals := 0, 0
	for _, s := range secs {
		var err error
		switch s.id {
		case secImport:
			importedGlobals, err = countImportedGlobals(s.body)
		case secGlobal:
			r := &reader{b: s.body}
			definedGlobals, err = int(r.u32()), r.err
		case secExport:
			err = checkExports(s.body)
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
	}
	global := uint32(importedGlobals + definedGlobals)

	// The new global: (mut i32) initialised with i32.const 0.
	globalEntry := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b}
	var exportEntry []byte
	exportEntry = appendName(exportEntry, InterruptGlobal)
	exportEntry = append(exportEntry, 0x03) // global
	exportEntry = binary.AppendUvarint(exportEntry, uint64(global))

	out := append([]byte(nil), wasm[:8]...)
	put := func(id byte, body []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	// Sections must keep their order: a missing global section goes before
	// the first of export, start, element, data count, code, data; a
	// missing export section before the first of the rest.
	after := func(id byte, ids ...byte) bool {
		for _, x := range ids {
			if id == x {
				return true
			}
		}
		return false
	}
	var haveGlobal, haveExport bool
	for _, s := range secs {
		haveGlobal = haveGlobal || s.id == secGlobal
		haveExport = haveExport || s.id == secExport
	}
	addedGlobal, addedExport := haveGlobal, haveExport
	for _, s := range secs {
		if !addedGlobal && after(s.id, secExport, secStart, secElement, secDataCount, secCode, secData) {
			put(secGlobal, append([]byte{1}, globalEntry...))
			addedGlobal = true
		}
		if !addedExport && after(s.id, secStart, secElement, secDataCount, secCode, secData) {
			put(secExport, append([]byte{1}, exportEntry...))
			addedExport = true
		}
		switch s.id {
		case secGlobal:
			put(s.id, appendVecEntry(s.body, globalEntry))
		case secExport:
			put(s.id, appendVecEntry(s.body, exportEntry))
		case secCode:
			body, err := instrumentCode(s.body, global)
			if err != nil {
				return nil, err
			}
			put(s.id, body)
		default:
			put(s.id, s.body)
		}
	}
	if !addedGlobal {
		put(secGlobal, append([]byte{1}, globalEntry...))
	}
	if !addedExport {
		put(secExport, append([]byte{1}, exportEntry...))
	}
	return out, nil
}

// appendVecEntry returns a vector section body with one more entry.
func appendVecEntry(body, entry []byte) []byte {
	r := &reader{b: body}
	n := r.u32()
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, body[r.pos:]...)
	return append(out, entry...)
}

func appendName(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func countImportedGlobals(body []byte) (int, error) {
	r := &reader{b: body}
	n := int(r.u32())
	globals := 0
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
		case 0x03: // global: value type, mutability
			r.byte()
			r.byte()
			globals++
		default:
			return 0, fmt.Errorf("import of unknown kind 0x%02x", kind)
		}
		if r.err != nil {
			return 0, r.err
		}
	}
	return globals, r.err
}

func checkExports(body []byte) error {
	r := &reader{b: body}
	n := int(r.u32())
	for range n {
		if name := r.name(); name == InterruptGlobal {
			return fmt.Errorf("the module exports %q, a name the host reserves", name)
		}
		r.byte()
		r.u32()
	}
	return r.err
}

// instrumentCode rewrites the code section: after every loop's block type,
// the interrupt check.
func instrumentCode(body []byte, global uint32) ([]byte, error) {
	check := []byte{0x23} // global.get
	check = binary.AppendUvarint(check, uint64(global))
	check = append(check, 0x04, 0x40, 0x00, 0x0b) // if (empty) unreachable end

	r := &reader{b: body}
	n := int(r.u32())
	out := binary.AppendUvarint(make([]byte, 0, len(body)+len(body)/8), uint64(n))
	var fn []byte
	for k := range n {
		size := int(r.u32())
		code := r.bytes(size)
		if r.err != nil {
			return nil, fmt.Errorf("function body %d: %w", k, r.err)
		}
		var err error
		fn, err = instrumentBody(fn[:0], code, check)
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

// instrumentBody appends to out the function body code with check after
// every loop header.
func instrumentBody(out, code, check []byte) ([]byte, error) {
	r := &reader{b: code}
	groups := int(r.u32())
	for range groups {
		r.u32()  // count
		r.byte() // value type
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	from := 0 // code[from:r.pos] is not yet copied
	for r.pos < len(code) && r.err == nil {
		at := r.pos
		op := r.byte()
		if err := r.skipImmediates(op); err != nil {
			return nil, fmt.Errorf("instruction 0x%02x at byte %d: %w", op, at, err)
		}
		if op == 0x03 { // loop
			out = append(out, code[from:r.pos]...)
			out = append(out, check...)
			from = r.pos
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, code[from:]...), nil
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
