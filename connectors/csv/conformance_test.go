package csv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/vigie-edu/vigie/connectors/conformance"
	vcsv "github.com/vigie-edu/vigie/connectors/csv"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/readback"
)

func TestSourceConformance(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "students.csv")
	// A byte order mark, a quoted line break, a bad row (dead letter) and a
	// null: resuming must still land on record boundaries.
	data := "\ufeffid,name,grade\n1,Ada,12.5\n2,\"Bob\nJr\",NA\nx,bad,1\n3,Chloé,9\n4,Dan,10\n5,Eve,11\n6,Fay,14\n7,Gus,15\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	c := conformance.SourceCase{
		Options: map[string]any{"path": path, "columns": map[string]any{"id": "int64"}},
		WantRows: []string{"1|Ada|12.5", "2|Bob\nJr|(null)", "3|Chloé|9", "4|Dan|10", "5|Eve|11",
			"6|Fay|14", "7|Gus|15"},
		Bad: []conformance.BadCase{
			{Options: map[string]any{"path": path, "delimiter": ";;"}, Want: `";;" is not a usable delimiter`},
			{Options: map[string]any{"path": path, "columns": map[string]any{"idd": "int64"}}, Want: `did you mean "id"?`},
			{Options: map[string]any{"path": filepath.Join(dir, "missing.csv")}, Want: "missing.csv"},
			{Options: map[string]any{"path": path, "on_error": "ignore"}, Want: `"ignore" is not one of`},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, vcsv.Source{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSource(t, conformance.ThroughPlugin(t, vcsv.Source{}).(protocol.Source), c)
	})
}

func TestSinkConformance(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out", "grades.csv")
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	c := conformance.SinkCase{
		Options: map[string]any{"path": path, "null": "NA"},
		Schema:  schema,
		Batches: []string{
			`[{"id": 1, "name": "Ada"}, {"id": 2, "name": null}]`,
			`[{"id": 3, "name": "a, \"quoted\"\nvalue"}]`,
			`[{"id": 4, "name": "Chloé"}, {"id": 5, "name": "Dan"}]`,
			`[{"id": 6, "name": "Eve"}]`,
		},
		ReadBack: func(t *testing.T) []string {
			recs := readback.CSV(t, path)
			if len(recs) == 0 || strings.Join(recs[0], ",") != "id,name" {
				t.Fatalf("header = %v", recs)
			}
			var out []string
			for _, r := range recs[1:] {
				if r[1] == "NA" {
					r[1] = "(null)"
				}
				out = append(out, strings.Join(r, "|"))
			}
			return out
		},
		Bad: []conformance.BadCase{
			{Options: map[string]any{}, Want: `option "path": required option is missing`},
			{Options: map[string]any{"path": path, "header": "yes"}, Want: "expected true or false"},
			{Options: map[string]any{"path": path, "delimiter": "\n"}, Want: "not a usable delimiter"},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSink(t, vcsv.Sink{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSink(t, conformance.ThroughPlugin(t, vcsv.Sink{}).(protocol.Sink), c)
	})
}
