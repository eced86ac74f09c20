package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vigie-edu/vigie/internal/suggest"
	"math"
	"sort"
)

// Kinds of rule.
const (
	KindMap   = "map"   // one output row per input row
	KindGroup = "group" // one output row per group of input rows
)

// Manifest describes a rule: what it reads, writes and accepts as
// parameters. It is the JSON document a rule returns from vigie_manifest.
// Unknown fields are ignored.
type Manifest struct {
	ABI         int      `json:"abi"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Description string   `json:"description,omitempty"`
	Kind        string   `json:"kind"`
	Inputs      []Column `json:"inputs"`
	Outputs     []Column `json:"outputs"`
	Params      []Param  `json:"params,omitempty"`
}

// Column is a manifest input or output.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Param is a manifest parameter. Default is nil when the parameter has none
// (it must then be given); after ParseManifest it holds a value of the Go
// type that ResolveParams returns for Type.
type Param struct {
	Name        string `json:"name"`
	Type        Type   `json:"type"`
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
}

// ParseManifest decodes and validates a manifest: abi equal to Version, a
// name, kind map or group, known types, unique column names (inputs and
// outputs separately) and parameter names, defaults of the declared type.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks m as ParseManifest does, and normalises parameter
// defaults to the Go types of ResolveParams.
func (m *Manifest) Validate() error {
	if m.ABI != Version {
		return fmt.Errorf("manifest: abi is %d, want %d", m.ABI, Version)
	}
	if m.Name == "" {
		return errors.New("manifest: name is missing")
	}
	if m.Kind != KindMap && m.Kind != KindGroup {
		return fmt.Errorf("manifest %q: kind %q, want %q or %q", m.Name, m.Kind, KindMap, KindGroup)
	}
	if len(m.Outputs) == 0 {
		return fmt.Errorf("manifest %q: no outputs", m.Name)
	}
	if err := checkColumns(m.Name, "input", m.Inputs); err != nil {
		return err
	}
	if err := checkColumns(m.Name, "output", m.Outputs); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range m.Params {
		p := &m.Params[i]
		if err := checkName(m.Name, "param", p.Name, p.Type, seen); err != nil {
			return err
		}
		if p.Default == nil {
			continue
		}
		v, err := convertParam(p.Type, p.Default)
		if err != nil {
			return fmt.Errorf("manifest %q: param %q: default: %w", m.Name, p.Name, err)
		}
		p.Default = v
	}
	return nil
}

func checkColumns(rule, what string, cols []Column) error {
	seen := map[string]bool{}
	for _, c := range cols {
		if err := checkName(rule, what, c.Name, c.Type, seen); err != nil {
			return err
		}
	}
	return nil
}

func checkName(rule, what, name string, t Type, seen map[string]bool) error {
	switch {
	case name == "":
		return fmt.Errorf("manifest %q: %s with no name", rule, what)
	case seen[name]:
		return fmt.Errorf("manifest %q: %s %q declared twice", rule, what, name)
	case !t.Valid():
		return fmt.Errorf("manifest %q: %s %q: missing or invalid type", rule, what, name)
	}
	seen[name] = true
	return nil
}

// Param returns the parameter called name, or nil.
func (m *Manifest) Param(name string) *Param {
	for i := range m.Params {
		if m.Params[i].Name == name {
			return &m.Params[i]
		}
	}
	return nil
}

// ResolveParams checks the parameters a pipeline gives a rule against the
// manifest and returns them with defaults filled in. An unknown name, a
// value of the wrong type or a missing parameter without default is
// refused.
//
// Accepted values (as decoded from TOML or JSON): bool for bool; int, int32,
// int64 or json.Number within range for int32 and int64 (returned as int32
// and int64); any integer or float for float64 (returned as float64); string
// for utf8, timestamp_us and date32 are not accepted as parameter types.
func (m *Manifest) ResolveParams(given map[string]any) (map[string]any, error) {
	names := make([]string, 0, len(given))
	for name := range given {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic error for several unknown names
	for _, name := range names {
		if m.Param(name) == nil {
			return nil, fmt.Errorf("rule %q: unknown param %q%s", m.Name, name, m.suggest(name))
		}
	}
	out := make(map[string]any, len(m.Params))
	for _, p := range m.Params {
		v, ok := given[p.Name]
		if !ok {
			if p.Default == nil {
				return nil, fmt.Errorf("rule %q: param %q (%s) is required", m.Name, p.Name, p.Type)
			}
			out[p.Name] = p.Default
			continue
		}
		cv, err := convertParam(p.Type, v)
		if err != nil {
			return nil, fmt.Errorf("rule %q: param %q: %w", m.Name, p.Name, err)
		}
		out[p.Name] = cv
	}
	return out, nil
}

// ErrParamType is wrapped by errors about a parameter value of the wrong
// type.
var ErrParamType = errors.New("wrong type")

func convertParam(t Type, v any) (any, error) {
	bad := func() error { return fmt.Errorf("%w: want %s, got %s", ErrParamType, t, describe(v)) }
	switch t {
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Utf8:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case Int32, Int64:
		i, ok := asInt(v)
		if !ok {
			return nil, bad()
		}
		if t == Int32 {
			if i < math.MinInt32 || i > math.MaxInt32 {
				return nil, fmt.Errorf("%w: %d is out of the range of int32", ErrParamType, i)
			}
			return int32(i), nil
		}
		return i, nil
	case Float64:
		if i, ok := asInt(v); ok {
			return float64(i), nil
		}
		switch f := v.(type) {
		case float64:
			return f, nil
		case float32:
			return float64(f), nil
		case json.Number:
			if x, err := f.Float64(); err == nil {
				return x, nil
			}
		}
	default:
		return nil, fmt.Errorf("%w: %s is not a parameter type (want bool, int32, int64, float64 or utf8)", ErrParamType, t)
	}
	return nil, bad()
}

// asInt returns v as an int64 when it is an integer value.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	}
	return 0, false
}

func describe(v any) string {
	switch x := v.(type) {
	case json.Number:
		return fmt.Sprintf("number %s", x)
	case string:
		return fmt.Sprintf("string %q", x)
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// suggest returns ` (did you mean "x"?)` for the closest parameter name, or
// "" when none is close.
func (m *Manifest) suggest(name string) string {
	names := make([]string, len(m.Params))
	for i, p := range m.Params {
		names[i] = p.Name
	}
	if len(names) == 0 {
		return " (the rule takes no params)"
	}
	return suggest.DidYouMean(name, names)
}
