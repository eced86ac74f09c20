// Package abi holds the indicator rule ABI, version 1, shared by the host
// (internal/wasmhost) and guest SDKs (rules/sdk/vigie): the column types, the
// manifest, its parameter checking and the batch descriptor layout.
//
// The package has no dependencies besides the standard library so that it
// also compiles for GOOS=wasip1 GOARCH=wasm. The normative text of the ABI is
// rules/ABI.md (from the design note rule-abi.md).
package abi

import (
	"fmt"
	"strings"
)

// Version is the ABI version implemented here; vigie_abi_version must return
// it and a manifest's "abi" field must equal it.
const Version = 1

// Names of the exports and imports the ABI defines.
const (
	ExportMemory     = "memory"
	ExportABIVersion = "vigie_abi_version"
	ExportManifest   = "vigie_manifest"
	ExportAlloc      = "vigie_alloc"
	ExportEval       = "vigie_eval"
	ExportInit       = "vigie_init"
	ExportInitialize = "_initialize"

	ImportModule = "vigie"
	ImportLog    = "log"
	ImportFail   = "fail"

	// WASIModule is the only other module a rule may import from.
	WASIModule = "wasi_snapshot_preview1"
)

// Log levels of the vigie.log import.
const (
	LevelDebug = 0
	LevelInfo  = 1
	LevelWarn  = 2
	LevelError = 3
)

// Batch descriptor layout (all fields u32, little-endian).
const (
	BatchHeaderSize = 16 // bytes before the first column
	ColumnSize      = 24 // bytes per column

	BatchNumRows      = 0
	BatchNumColumns   = 4
	BatchNumGroups    = 8
	BatchGroupOffsets = 12

	ColType      = 0
	ColValidity  = 4
	ColData      = 8
	ColOffsets   = 12
	ColDataLen   = 16
	ColNullCount = 20

	// Alignment is the alignment of pointers returned by vigie_alloc.
	Alignment = 8
)

// DescriptorSize returns the size in bytes of a batch descriptor with
// numColumns columns.
func DescriptorSize(numColumns int) int { return BatchHeaderSize + ColumnSize*numColumns }

// Type is the type of a rule input or output column, as it appears in a
// column descriptor.
type Type uint32

// The column types of ABI version 1.
const (
	Bool        Type = 1
	Int32       Type = 2
	Int64       Type = 3
	Float64     Type = 4
	Utf8        Type = 5
	TimestampUS Type = 6 // int64 microseconds since the Unix epoch, UTC
	Date32      Type = 7 // int32 days since the Unix epoch
)

var typeNames = [...]string{
	Bool:        "bool",
	Int32:       "int32",
	Int64:       "int64",
	Float64:     "float64",
	Utf8:        "utf8",
	TimestampUS: "timestamp_us",
	Date32:      "date32",
}

// String returns the manifest name of t ("int32", "utf8"...).
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Valid reports whether t is one of the seven ABI types.
func (t Type) Valid() bool { return t >= Bool && t <= Date32 }

// Width returns the size in bytes of one value of a fixed-width type, and 0
// for Bool (a bitmap) and Utf8 (variable).
func (t Type) Width() int {
	switch t {
	case Int32, Date32:
		return 4
	case Int64, Float64, TimestampUS:
		return 8
	}
	return 0
}

// DataLen returns the number of data bytes that n values of t occupy; for
// Utf8 it returns 0 (the length depends on the values).
func (t Type) DataLen(n int) int {
	if t == Bool {
		return BitmapLen(n)
	}
	return t.Width() * n
}

// BitmapLen returns the number of bytes of a bitmap of n bits.
func BitmapLen(n int) int { return (n + 7) / 8 }

// ParseType returns the Type named name in a manifest.
func ParseType(name string) (Type, error) {
	for t, n := range typeNames {
		if n != "" && n == name {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("unknown type %q (want one of %s)", name, strings.Join(typeNames[1:], ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("invalid type %d", uint32(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
