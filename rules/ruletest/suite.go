// Package ruletest runs golden cases against a rule module: inputs,
// parameters and expected outputs (nulls included) written in a TOML file,
// CASES.toml. The conformance suite (rules/conformance) and the rule
// authors' tools use it.
//
// From Go: Load (or Parse) a suite, make a Runner with
// NewRunner(ctx, NewConfig()) and call Runner.Run with a module's path;
// the Report lists every case. `vigie rule test FILE.wasm CASES.toml` does
// the same from the command line.
//
// # File format
//
//	tolerance = 1e-12                 # optional default for every case
//
//	[[case]]
//	name = "flagged at threshold"
//	params = { threshold = 0.10 }     # optional; the manifest fills defaults
//	tolerance = 1e-9                  # optional, float64 outputs
//	groups = [2, 1]                   # group rules only: group sizes, in row order
//	error = "not between 0 and 1"     # optional: the case expects an error
//	                                  # (vigie_init or vigie_eval) containing this text
//	[case.input]                      # manifest input -> values, one per row
//	absent_half_days = [4, 0, "null"]
//	half_days = [40, 0, 20]
//	[case.expect]                     # manifest output -> values, one per output row
//	absence_rate = [0.1, "null", "null"]
//	flag = [true, "null", "null"]
//
// A group rule's case must give groups: the sizes of its groups, in row
// order, adding up to the rows of the inputs (a size may be 0: an empty
// group; groups = [] with no rows is a batch without groups). Each
// expected column then has one value per group. A map rule's case must not
// give groups. rules/conformance/group.cases.toml is an example.
//
// Column types come from the module's manifest. Every input column of the
// manifest must be given, all with the same number of rows; expect may
// name a subset of the outputs (each listed column is compared in full).
//
// Values, by type:
//
//   - null: the string "null", for every type. A utf8 value that is the
//     text "null" itself is written { utf8 = "null" }.
//   - bool: true / false.
//   - int32, int64: TOML integers (int32 range checked).
//   - float64: TOML floats or integers, nan, inf, -inf. Expected values
//     match when |got - want| <= tolerance * max(1, |want|); the default
//     tolerance is 0 (exact). nan matches nan.
//   - utf8: TOML strings.
//   - timestamp_us: an integer (microseconds since the Unix epoch), an RFC
//     3339 string ("2024-09-02T08:00:00Z") or a TOML date-time (a local one
//     is read as UTC).
//   - date32: an integer (days since the Unix epoch), a "yyyy-mm-dd" string
//     or a TOML local date.
package ruletest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Suite is a parsed CASES.toml file.
type Suite struct {
	// Path is the file the suite was read from.
	Path  string
	Cases []Case
}

// Case is one golden case. Its values are kept as decoded from TOML: they
// are converted to the module's declared types when the case runs.
type Case struct {
	Name string
	// Line is the line of the case's [[case]] header in the file (0 when
	// unknown).
	Line      int
	Params    map[string]any
	Tolerance float64
	// Groups holds the group sizes of a group rule (nil for a map rule).
	Groups []int
	// Error, when set, makes the case expect an error containing it.
	Error  string
	Input  map[string][]any
	Expect map[string][]any
}

// Where returns "file:line" (or "file") of the case, for messages.
func (c *Case) where(path string) string {
	if c.Line > 0 {
		return fmt.Sprintf("%s:%d", path, c.Line)
	}
	return path
}

type fileCase struct {
	Name      string           `toml:"name"`
	Params    map[string]any   `toml:"params"`
	Tolerance *float64         `toml:"tolerance"`
	Groups    []int            `toml:"groups"`
	Error     string           `toml:"error"`
	Input     map[string][]any `toml:"input"`
	Expect    map[string][]any `toml:"expect"`
}

type file struct {
	Tolerance float64    `toml:"tolerance"`
	Cases     []fileCase `toml:"case"`
}

var caseHeader = regexp.MustCompile(`^\s*\[\[\s*case\s*\]\]`)

// Load reads and checks a CASES.toml file. Errors name the file and, where
// the TOML decoder or the case headers give one, the line.
func Load(path string) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ruletest: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for data already read; path is used in messages.
func Parse(path string, data []byte) (*Suite, error) {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	lines := headerLines(data)
	var keys []string
	for _, k := range md.Undecoded() {
		// { utf8 = "..." } values are decoded into maps, not fields.
		if len(k) > 2 && k[0] == "case" && (k[1] == "input" || k[1] == "expect") {
			continue
		}
		keys = append(keys, k.String())
	}
	if len(keys) > 0 {
		return nil, fmt.Errorf("%s: unknown keys %s (a case has name, params, tolerance, groups, error, input, expect)",
			path, strings.Join(keys, ", "))
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no [[case]]", path)
	}
	s := &Suite{Path: path}
	names := map[string]int{}
	for i, fc := range f.Cases {
		c := Case{
			Name: fc.Name, Params: fc.Params, Tolerance: f.Tolerance, Groups: fc.Groups,
			Error: fc.Error, Input: fc.Input, Expect: fc.Expect,
		}
		if i < len(lines) {
			c.Line = lines[i]
		}
		if fc.Tolerance != nil {
			c.Tolerance = *fc.Tolerance
		}
		where := c.where(path)
		if c.Name == "" {
			return nil, fmt.Errorf("%s: case %d has no name", where, i+1)
		}
		if prev, ok := names[c.Name]; ok {
			return nil, fmt.Errorf("%s: case %q already defined at line %d", where, c.Name, prev)
		}
		names[c.Name] = c.Line
		if c.Tolerance < 0 || math.IsNaN(c.Tolerance) {
			return nil, fmt.Errorf("%s: case %q: tolerance %v is negative", where, c.Name, c.Tolerance)
		}
		if len(c.Input) == 0 {
			return nil, fmt.Errorf("%s: case %q has no [case.input]", where, c.Name)
		}
		if c.Error == "" && len(c.Expect) == 0 {
			return nil, fmt.Errorf("%s: case %q has neither [case.expect] nor error", where, c.Name)
		}
		rows := -1
		for _, col := range sortedKeys(c.Input) {
			n := len(c.Input[col])
			if rows >= 0 && n != rows {
				return nil, fmt.Errorf("%s: case %q: input %q has %d rows, other inputs have %d", where, c.Name, col, n, rows)
			}
			rows = n
		}
		if c.Groups != nil {
			sum := 0
			for _, g := range c.Groups {
				if g < 0 {
					return nil, fmt.Errorf("%s: case %q: negative group size %d", where, c.Name, g)
				}
				sum += g
			}
			if sum != rows {
				return nil, fmt.Errorf("%s: case %q: groups add up to %d rows, inputs have %d", where, c.Name, sum, rows)
			}
		}
		outRows := rows
		if c.Groups != nil {
			outRows = len(c.Groups)
		}
		for _, col := range sortedKeys(c.Expect) {
			if n := len(c.Expect[col]); n != outRows {
				return nil, fmt.Errorf("%s: case %q: expect %q has %d rows, want %d", where, c.Name, col, n, outRows)
			}
		}
		s.Cases = append(s.Cases, c)
	}
	return s, nil
}

// headerLines returns the line numbers of the [[case]] headers.
func headerLines(data []byte) []int {
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		if caseHeader.MatchString(sc.Text()) {
			lines = append(lines, n)
		}
	}
	return lines
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isNull reports whether a TOML value is the null marker.
func isNull(v any) bool {
	s, ok := v.(string)
	return ok && s == "null"
}

// parseTimestamp reads a timestamp_us value.
func parseTimestamp(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case time.Time:
		return x.UnixMicro(), nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return 0, fmt.Errorf("%q is not an RFC 3339 timestamp", x)
		}
		return t.UnixMicro(), nil
	}
	return 0, fmt.Errorf("%s is not a timestamp (integer microseconds, RFC 3339 string or TOML date-time)", describe(v))
}

// parseDate reads a date32 value.
func parseDate(v any) (int32, error) {
	var t time.Time
	switch x := v.(type) {
	case int64:
		if x < math.MinInt32 || x > math.MaxInt32 {
			return 0, fmt.Errorf("%d is out of the date32 range", x)
		}
		return int32(x), nil
	case time.Time:
		t = x
	case string:
		var err error
		if t, err = time.Parse(time.DateOnly, x); err != nil {
			return 0, fmt.Errorf("%q is not a yyyy-mm-dd date", x)
		}
	default:
		return 0, fmt.Errorf("%s is not a date (integer days, yyyy-mm-dd string or TOML local date)", describe(v))
	}
	y, m, d := t.Date()
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	return int32(days), nil
}

func describe(v any) string {
	switch v.(type) {
	case string:
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %v", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case time.Time:
		return fmt.Sprintf("date-time %v", v)
	}
	return fmt.Sprintf("%T %v", v, v)
}
