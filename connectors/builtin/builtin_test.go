package builtin

import (
	"reflect"
	"testing"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

func TestRegistry(t *testing.T) {
	r := Registry()
	if got, want := r.Names(), []string{"csv", "csv_file", "parquet"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("names = %v, want %v", got, want)
	}
	kinds := map[string]protocol.Kind{"csv": protocol.KindSource, "csv_file": protocol.KindSink, "parquet": protocol.KindSink}
	for _, s := range r.Specs() {
		if s.Kind != kinds[s.Name] || s.Doc == "" || s.Version == "" {
			t.Errorf("%s: kind %q, doc %d bytes, version %q", s.Name, s.Kind, len(s.Doc), s.Version)
		}
		for _, o := range s.Options {
			if o.Doc == "" {
				t.Errorf("%s: option %s has no doc", s.Name, o.Name)
			}
		}
		// Every default must pass the spec's own check.
		if _, err := s.Check(map[string]any{"path": "x"}); err != nil {
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
