package protocol

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/vigie-edu/vigie/internal/suggest"
)

// Kind says whether a connector reads (source) or writes (sink).
type Kind string

// Connector kinds.
const (
	KindSource Kind = "source"
	KindSink   Kind = "sink"
)

// OptionType is the type of a connector option as written in pipeline.toml.
type OptionType string

// Option types. A path is a string that the engine resolves against the
// pipeline file's folder before the connector sees it.
const (
	TypeString     OptionType = "string"
	TypePath       OptionType = "path"
	TypeInt        OptionType = "int"
	TypeFloat      OptionType = "float"
	TypeBool       OptionType = "bool"
	TypeStringList OptionType = "string_list"
	TypeStringMap  OptionType = "string_map"
)

// Option declares one option of a connector: it serves validation, `vigie
// plugins describe` and the generated reference at once.
type Option struct {
	Name     string     `json:"name"`
	Type     OptionType `json:"type"`
	Required bool       `json:"required,omitempty"`
	Default  any        `json:"default,omitempty"`
	Doc      string     `json:"doc"`
	// Enum, when set, lists the values a string option accepts.
	Enum []string `json:"enum,omitempty"`
}

// Spec describes a connector.
type Spec struct {
	Name    string   `json:"name"`
	Kind    Kind     `json:"kind"`
	Version string   `json:"version"`
	Doc     string   `json:"doc"`
	Options []Option `json:"options"`
	// Unbounded marks a source whose Read does not return at the end of
	// its input (Kafka): a pipeline with one runs until it is stopped, and
	// its sinks flush max_delay after the first batch written since their
	// last flush, so that what was read reaches the outputs within about
	// twice max_delay (docs/pipeline.md, "Continuous runs").
	Unbounded bool `json:"unbounded,omitempty"`
	// Checkpoints marks a sink whose writers implement Checkpointer and
	// whose connector implements CheckpointSink: it commits the engine's
	// checkpoint records atomically with its output (the Kafka sink, in
	// one transaction), which makes it the commit point of a continuous
	// run's checkpoints (docs/design/streaming.md, section 6).
	Checkpoints bool `json:"checkpoints,omitempty"`
	// AppendsAcrossRuns marks a sink whose positions, in a run with
	// checkpoints (Config.Checkpointed), stay valid after its writer
	// closed: opened again with the position of its last flush, it goes
	// on with the same output (the parquet sink's folder of parts). The
	// engine then records that position at the sink's last checkpoint,
	// and the next run continues the output; for other sinks it records
	// none, and the next run writes a new output.
	AppendsAcrossRuns bool `json:"appends_across_runs,omitempty"`
}

// Option returns the declared option called name.
func (s Spec) Option(name string) (Option, bool) {
	for _, o := range s.Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// OptionError is a bad option: unknown, missing, of the wrong type or out of
// its allowed values. It wraps ErrConfig.
type OptionError struct {
	Connector string
	Option    string
	Msg       string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("connector %q: option %q: %s", e.Connector, e.Option, e.Msg)
}

// Unwrap makes errors.Is(err, ErrConfig) true.
func (e *OptionError) Unwrap() error { return ErrConfig }

// OptionErrors is every problem found in one set of options.
type OptionErrors []*OptionError

func (es OptionErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual errors.
func (es OptionErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Check validates opts against the spec and returns a normalised copy:
// defaults filled in, integers as int64, floats as float64, lists as
// []string and maps as map[string]string. It reports every problem at once.
func (s Spec) Check(opts map[string]any) (map[string]any, error) {
	var errs OptionErrors
	bad := func(name, format string, args ...any) {
		errs = append(errs, &OptionError{Connector: s.Name, Option: name, Msg: fmt.Sprintf(format, args...)})
	}
	out := make(map[string]any, len(s.Options))
	names := make([]string, 0, len(opts))
	for k := range opts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		o, ok := s.Option(k)
		if !ok {
			known := make([]string, len(s.Options))
			for i, o := range s.Options {
				known[i] = o.Name
			}
			bad(k, "unknown option%s", suggest.Hint(k, known, "known"))
			continue
		}
		v, err := coerce(o, opts[k])
		if err != nil {
			bad(k, "%v", err)
			continue
		}
		out[k] = v
	}
	for _, o := range s.Options {
		if _, given := out[o.Name]; given {
			continue
		}
		if _, failed := opts[o.Name]; failed {
			continue
		}
		if o.Required {
			bad(o.Name, "required option is missing (%s: %s)", o.Type, o.Doc)
			continue
		}
		if o.Default != nil {
			v, err := coerce(o, o.Default)
			if err != nil {
				bad(o.Name, "bad default: %v", err)
				continue
			}
			out[o.Name] = v
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func coerce(o Option, v any) (any, error) {
	switch o.Type {
	case TypeString, TypePath:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("expected a string, got %s", typeName(v))
		}
		if len(o.Enum) > 0 && !contains(o.Enum, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(quoteAll(o.Enum), ", "))
		}
		if o.Type == TypePath && s == "" {
			return nil, fmt.Errorf("expected a path, got an empty string")
		}
		return s, nil
	case TypeInt:
		switch n := v.(type) {
		case int64:
			return n, nil
		case int:
			return int64(n), nil
		case float64: // JSON numbers arrive as float64
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return int64(n), nil
			}
		}
		return nil, fmt.Errorf("expected an integer, got %s", typeName(v))
	case TypeFloat:
		switch n := v.(type) {
		case float64:
			return n, nil
		case int64:
			return float64(n), nil
		case int:
			return float64(n), nil
		}
		return nil, fmt.Errorf("expected a number, got %s", typeName(v))
	case TypeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("expected true or false, got %s", typeName(v))
		}
		return b, nil
	case TypeStringList:
		switch l := v.(type) {
		case []string:
			return l, nil
		case []any:
			out := make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("expected a list of strings, element %d is %s", i, typeName(e))
				}
				out[i] = s
			}
			return out, nil
		}
		return nil, fmt.Errorf("expected a list of strings, got %s", typeName(v))
	case TypeStringMap:
		switch m := v.(type) {
		case map[string]string:
			return m, nil
		case map[string]any:
			out := make(map[string]string, len(m))
			for k, e := range m {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("expected a table of strings, %q is %s", k, typeName(e))
				}
				out[k] = s
			}
			return out, nil
		}
		return nil, fmt.Errorf("expected a table of strings, got %s", typeName(v))
	}
	return nil, fmt.Errorf("option type %q is not supported", o.Type)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case int, int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []string:
		return "a list"
	case map[string]any, map[string]string:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func quoteAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
