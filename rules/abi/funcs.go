package abi

import (
	"slices"
	"strings"
)

// ValueType is a WebAssembly value type, with the encoding of the binary
// format (the same as wazero's api.ValueType, so a host converts with
// ValueType(t)).
type ValueType byte

// The value types the ABI's functions use.
const (
	I32 ValueType = 0x7f
	I64 ValueType = 0x7e
)

func (t ValueType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case 0x7d:
		return "f32"
	case 0x7c:
		return "f64"
	case 0x6f:
		return "externref"
	}
	return "unknown"
}

// Signature is the parameter and result types of a function.
type Signature struct{ Params, Results []ValueType }

// String is "(i32, i32) -> (i32)".
func (s Signature) String() string { return typeList(s.Params) + " -> " + typeList(s.Results) }

// Equal reports whether s and o have the same types.
func (s Signature) Equal(o Signature) bool {
	return slices.Equal(s.Params, o.Params) && slices.Equal(s.Results, o.Results)
}

func typeList(ts []ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.String()
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// Func is a function of the ABI: an export of the rule or an import from
// ImportModule.
type Func struct {
	Name      string
	Signature Signature
	Required  bool // exports only: a rule must define it
}

// The ABI's functions (rules/ABI.md, section 1): the single table the host
// checks rules against and vigie rule inspect prints.
var (
	exports = []Func{
		{ExportABIVersion, Signature{nil, []ValueType{I32}}, true},
		{ExportManifest, Signature{nil, []ValueType{I64}}, true},
		{ExportAlloc, Signature{[]ValueType{I32}, []ValueType{I32}}, true},
		{ExportEval, Signature{[]ValueType{I32, I32}, []ValueType{I32}}, true},
		{ExportInitialize, Signature{nil, nil}, false},
		{ExportInit, Signature{[]ValueType{I32, I32}, []ValueType{I32}}, false},
	}
	imports = []Func{
		{ImportLog, Signature{[]ValueType{I32, I32, I32}, nil}, false},
		{ImportFail, Signature{[]ValueType{I32, I32}, nil}, false},
	}
)

// Exports returns the functions a rule exports (besides ExportMemory): the
// required ones first, in the order of rules/ABI.md.
func Exports() []Func { return slices.Clone(exports) }

// Imports returns the functions a rule may import from ImportModule.
func Imports() []Func { return slices.Clone(imports) }
