package builtin

import (
	"reflect"
	"testing"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

func TestRegistry(t *testing.T) {
	r := Registry()
	// The list is explicit on purpose: adding or removing a built-in
	// connector changes what every vigie binary offers.
	kinds := map[string]protocol.Kind{
		"csv": protocol.KindSource, "csv_file": protocol.KindSink, "parquet": protocol.KindSink,
		"parquet_file": protocol.KindSource, "jsonl": protocol.KindSource, "xapi": protocol.KindSource,
		"xapi_http": protocol.KindSource, "pronote": protocol.KindSource, "oneroster": protocol.KindSource,
		"kafka": protocol.KindSource, "kafka_topic": protocol.KindSink,
		"postgres_query": protocol.KindSource, "postgres": protocol.KindSink,
		"webhook": protocol.KindSink, "replay": protocol.KindSource, "jsonl_file": protocol.KindSink,
	}
	want := []string{"csv", "csv_file", "parquet", "parquet_file", "jsonl", "jsonl_file", "xapi", "xapi_http", "pronote", "oneroster", "kafka", "kafka_topic", "postgres_query", "postgres", "webhook", "replay"}
	if got := r.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("names = %v, want %v", got, want)
	}
	for _, s := range r.Specs() {
		if s.Kind != kinds[s.Name] || s.Doc == "" || s.Version == "" {
			t.Errorf("%s: kind %q, doc %d bytes, version %q", s.Name, s.Kind, len(s.Doc), s.Version)
		}
		for _, o := range s.Options {
			if o.Doc == "" {
				t.Errorf("%s: option %s has no doc", s.Name, o.Name)
			}
		}
		// Every default must pass the spec's own check, given a value for
		// each required option.
		if _, err := s.Check(requiredOptions(s)); err != nil {
			t.Errorf("%s: defaults: %v", s.Name, err)
		}
		c, _ := r.Get(s.Name)
		_, isSource := c.(protocol.Source)
		_, isSink := c.(protocol.Sink)
		if isSource != (s.Kind == protocol.KindSource) || isSink != (s.Kind == protocol.KindSink) {
			t.Errorf("%s: implements source %v, sink %v, kind %s", s.Name, isSource, isSink, s.Kind)
		}
	}
}

// requiredOptions gives each required option of s a value of its type.
func requiredOptions(s protocol.Spec) map[string]any {
	opts := map[string]any{}
	for _, o := range s.Options {
		if !o.Required {
			continue
		}
		switch {
		case len(o.Enum) > 0:
			opts[o.Name] = o.Enum[0]
		case o.Type == protocol.TypeInt:
			opts[o.Name] = int64(1)
		case o.Type == protocol.TypeFloat:
			opts[o.Name] = 1.0
		case o.Type == protocol.TypeBool:
			opts[o.Name] = true
		case o.Type == protocol.TypeStringList:
			opts[o.Name] = []any{"x"}
		case o.Type == protocol.TypeStringMap:
			opts[o.Name] = map[string]any{"x": "utf8"}
		default:
			opts[o.Name] = "x"
		}
	}
	return opts
}
