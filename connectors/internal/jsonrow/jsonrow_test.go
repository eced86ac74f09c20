package jsonrow

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		declared map[string]string
		order    []string
		want     string // error piece, "" for none
	}{
		{"by name", map[string]string{"b": "utf8", "a": "int64"}, nil, ""},
		{"ordered", map[string]string{"b": "utf8", "a": "int64"}, []string{"b", "a"}, ""},
		{"none", nil, nil, "declare at least one column"},
		{"bad order", map[string]string{"b": "utf8", "a": "int64"}, []string{"a"}, "must list each declared column once"},
		{"bad type", map[string]string{"a": "integer"}, nil, `unknown type "integer"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("src", tt.declared, tt.order, false)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				want := tt.order
				if want == nil {
					want = []string{"a", "b"}
				}
				var got []string
				for _, f := range c.Fields() {
					got = append(got, f.Name)
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("fields %v, want %v", got, want)
				}
				return
			}
			if err == nil || !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a configuration error with %q", err, tt.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	c, err := New("src", map[string]string{"id": "int64", "who.name": "utf8", "day": "date32"}, []string{"id", "who.name", "day"}, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in      string
		field, reason string // reason piece, "" for success
		id            int64
		null          [3]bool
	}{
		{"full", `{"id": 3, "who": {"name": "Ada"}, "day": "2025-09-01"}`, "", "", 3, [3]bool{}},
		{"nulls and missing", `{"id": null, "who": null}`, "", "", 0, [3]bool{true, true, true}},
		{"dotted key wins", `{"id": 1, "who.name": "Bo"}`, "", "", 1, [3]bool{false, false, true}},
		{"not json", `{"id": `, "", "not JSON", 0, [3]bool{}},
		{"not an object", `[1]`, "", "expected a JSON object, got an array", 0, [3]bool{}},
		{"wrong type", `{"id": "x"}`, "id", "expected int64", 0, [3]bool{}},
		{"path through a scalar", `{"who": 3}`, "who.name", `expected "who" to be an object`, 0, [3]bool{}},
		{"strict", `{"id": 1, "zz": 2}`, "zz", "field is not declared", 0, [3]bool{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := make([]sdk.Cell, c.Len())
			field, reason := c.Decode([]byte(tt.in), vals)
			if tt.reason == "" {
				if reason != "" {
					t.Fatalf("decode %s: %s: %s", tt.in, field, reason)
				}
				if vals[0].I != tt.id {
					t.Errorf("id = %d, want %d", vals[0].I, tt.id)
				}
				for i, n := range tt.null {
					if vals[i].Null != n {
						t.Errorf("cell %d null = %v, want %v", i, vals[i].Null, n)
					}
				}
				return
			}
			if field != tt.field || !strings.Contains(reason, tt.reason) {
				t.Errorf("decode %s: %q, %q; want %q and a reason with %q", tt.in, field, reason, tt.field, tt.reason)
			}
		})
	}
}

// FuzzDecode: any input decodes or is refused with a reason, never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"id": 1, "who": {"name": "x"}, "day": "2025-01-01"}`, `[`, `{"who": []}`, `{"id": 1e400}`, `"x"`} {
		f.Add([]byte(s))
	}
	c, err := New("src", map[string]string{"id": "int32", "who.name": "utf8", "day": "date32", "at": "timestamp_us", "ok": "bool", "f": "float64"}, nil, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		vals := make([]sdk.Cell, c.Len())
		field, reason := c.Decode(data, vals)
		if reason == "" && field != "" {
			t.Errorf("field %q without a reason", field)
		}
	})
}
