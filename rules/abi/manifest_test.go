package abi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const goodManifest = `{
  "abi": 1, "name": "absence", "version": "1.0.0", "kind": "map",
  "future_field": {"ignored": true},
  "inputs":  [{"name": "absent_half_days", "type": "int32"}, {"name": "half_days", "type": "int32"}],
  "outputs": [{"name": "absence_rate", "type": "float64"}, {"name": "reason", "type": "utf8"}],
  "params":  [{"name": "threshold", "type": "float64", "default": 0.10, "description": "x"},
              {"name": "min_days", "type": "int32", "default": 4},
              {"name": "label", "type": "utf8"}]
}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "absence" || m.Kind != KindMap || len(m.Inputs) != 2 || m.Outputs[1].Type != Utf8 {
		t.Fatalf("unexpected manifest %+v", m)
	}
	if d := m.Param("threshold").Default; d != 0.10 {
		t.Errorf("threshold default = %#v, want float64 0.1", d)
	}
	if d := m.Param("min_days").Default; d != int32(4) {
		t.Errorf("min_days default = %#v, want int32 4", d)
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"not json", `{`, "parse manifest"},
		{"abi 2", `{"abi":2,"name":"r","kind":"map","outputs":[{"name":"o","type":"bool"}]}`, "abi is 2, want 1"},
		{"no name", `{"abi":1,"kind":"map","outputs":[{"name":"o","type":"bool"}]}`, "name is missing"},
		{"bad kind", `{"abi":1,"name":"r","kind":"reduce","outputs":[{"name":"o","type":"bool"}]}`, `kind "reduce"`},
		{"bad type", `{"abi":1,"name":"r","kind":"map","outputs":[{"name":"o","type":"decimal"}]}`, `unknown type "decimal"`},
		{"missing type", `{"abi":1,"name":"r","kind":"map","outputs":[{"name":"o"}]}`, `output "o": missing or invalid type`},
		{"dup input", `{"abi":1,"name":"r","kind":"map","inputs":[{"name":"a","type":"bool"},{"name":"a","type":"int32"}],"outputs":[{"name":"o","type":"bool"}]}`, `input "a" declared twice`},
		{"dup param", `{"abi":1,"name":"r","kind":"map","outputs":[{"name":"o","type":"bool"}],"params":[{"name":"p","type":"bool"},{"name":"p","type":"bool"}]}`, `param "p" declared twice`},
		{"no outputs", `{"abi":1,"name":"r","kind":"map"}`, "no outputs"},
		{"bad default", `{"abi":1,"name":"r","kind":"map","outputs":[{"name":"o","type":"bool"}],"params":[{"name":"p","type":"int32","default":"x"}]}`, `param "p": default: wrong type: want int32, got string "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestResolveParams(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		given   map[string]any
		want    map[string]any
		wantErr string
	}{
		{"defaults", map[string]any{"label": "x"},
			map[string]any{"threshold": 0.10, "min_days": int32(4), "label": "x"}, ""},
		{"toml int to float", map[string]any{"label": "x", "threshold": int64(1)},
			map[string]any{"threshold": 1.0, "min_days": int32(4), "label": "x"}, ""},
		{"toml int to int32", map[string]any{"label": "x", "min_days": int64(7)},
			map[string]any{"threshold": 0.10, "min_days": int32(7), "label": "x"}, ""},
		{"unknown with suggestion", map[string]any{"label": "x", "treshold": 0.2}, nil,
			`rule "absence": unknown param "treshold" (did you mean "threshold"?)`},
		{"unknown without suggestion", map[string]any{"label": "x", "zzzzzz": 1}, nil,
			`rule "absence": unknown param "zzzzzz"`},
		{"wrong type", map[string]any{"label": "x", "threshold": "high"}, nil,
			`rule "absence": param "threshold": wrong type: want float64, got string "high"`},
		{"float for int", map[string]any{"label": "x", "min_days": 1.5}, nil,
			`rule "absence": param "min_days": wrong type: want int32, got float64 1.5`},
		{"int32 out of range", map[string]any{"label": "x", "min_days": int64(1) << 40}, nil,
			`param "min_days": wrong type: 1099511627776 is out of the range of int32`},
		{"required missing", map[string]any{}, nil, `rule "absence": param "label" (utf8) is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.ResolveParams(tt.given)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	_, err = m.ResolveParams(map[string]any{"label": 3})
	if !errors.Is(err, ErrParamType) {
		t.Errorf("err = %v, want ErrParamType", err)
	}
}

func TestTypeNames(t *testing.T) {
	for ty := Bool; ty <= Date32; ty++ {
		got, err := ParseType(ty.String())
		if err != nil || got != ty {
			t.Errorf("ParseType(%q) = %v, %v", ty.String(), got, err)
		}
	}
	if _, err := ParseType("int8"); err == nil {
		t.Error("ParseType(int8) succeeded")
	}
}

// TestUnknownParamMessages checks the whole message of an unknown
// parameter: with a suggestion, without one, and for a rule without
// parameters.
func TestUnknownParamMessages(t *testing.T) {
	withParams, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	noParams, err := ParseManifest([]byte(`{"abi":1,"name":"bare","kind":"map","outputs":[{"name":"o","type":"bool"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		m     *Manifest
		param string
		want  string
	}{
		{"near", withParams, "treshold", `rule "absence": unknown param "treshold" (did you mean "threshold"?)`},
		{"far", withParams, "zzzzzz", `rule "absence": unknown param "zzzzzz"`},
		{"no params", noParams, "threshold", `rule "bare": unknown param "threshold" (the rule takes no params)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			given := map[string]any{tt.param: 1}
			if tt.m == withParams {
				given["label"] = "x"
			}
			_, err := tt.m.ResolveParams(given)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
