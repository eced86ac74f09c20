package xapi_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/xapi"
)

// The rows of the specification's simple and long examples and of a
// scored statement (testdata), in the order of the columns.
const (
	rowSimple = "fd41c918-b88b-4b20-a0a5-a4c32391aaa0|mailto:user@example.com|(null)|Project Tin Can API|" +
		"http://example.com/xapi/verbs#sent-a-statement|sent|http://example.com/xapi/activity/simplestatement|Activity|" +
		"2015-11-18T12:17:00Z|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)|(null)"
	rowLong = "6690e6c9-3ef0-4ed3-8b37-7f3964730bee|mailto:teampb@example.com|(null)|Team PB|" +
		"http://adlnet.gov/expapi/verbs/attended|attended|http://www.example.com/meetings/occurances/34534|Activity|" +
		"2013-05-18T05:32:34.804Z|2013-05-18T05:32:34.804Z|(null)|(null)|(null)|(null)|true|true|3600000000|PT1H0M0S|" +
		"ec531277-b57b-4c15-8d91-d292c5b2b8f7|Example virtual meeting software"
	rowScored = "3c8a7b4e-2f61-4c1a-9d2e-5b7f0a1c2d3e|S0042|https://ent.vigie.example|Élève 42|" +
		"http://adlnet.gov/expapi/verbs/scored|a obtenu|https://ent.vigie.example/activites/maths/quiz-3|Activity|" +
		"2025-09-04T18:31:55Z|(null)|0.95|95|0|100|true|true|270500000|PT4M30.5S|(null)|ENT Vigie"
)

func TestFileSourceConformance(t *testing.T) {
	cases := map[string]conformance.SourceCase{
		"jsonl": {
			Options:  map[string]any{"path": "testdata/statements.jsonl"},
			WantRows: []string{rowSimple, rowLong, rowScored},
			Bad: []conformance.BadCase{
				{Options: map[string]any{"path": "testdata/missing.jsonl"}, Want: "missing.jsonl"},
				{Options: map[string]any{"path": "testdata/statements.jsonl", "format": "xml"}, Want: `"xml" is not one of`},
			},
		},
		"json array": {
			Options:   map[string]any{"path": "testdata/statements.json"},
			BatchRows: 2,
			WantRows:  []string{rowSimple, rowLong, rowScored},
		},
		"json statement": {
			Options:  map[string]any{"path": "testdata/spec_long.json"},
			WantRows: []string{rowLong},
		},
		"bundle": {
			Options:   map[string]any{"path": "../../examples/data/bundle/xapi/statements.jsonl"},
			BatchRows: 500,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, xapi.FileSource{}, c) })
			t.Run("over gRPC", func(t *testing.T) {
				conformance.TestSource(t, conformance.ThroughPlugin(t, xapi.FileSource{}).(protocol.Source), c)
			})
		})
	}
}

type collect struct {
	rows []string
	dead []protocol.DeadLetter
}

func (c *collect) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	c.rows = append(c.rows, conformance.Rows(rec)...)
	return nil
}

func (c *collect) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	c.dead = append(c.dead, rows...)
	return nil
}

func readFile(t *testing.T, opts map[string]any) (*collect, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	c := &collect{}
	err := xapi.FileSource{}.Read(context.Background(), protocol.Config{Connector: xapi.SourceName, BatchRows: 2, Options: opts}, mem, c)
	return c, err
}

func deadStrings(ds []protocol.DeadLetter) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return strings.Join(out, "\n")
}

func TestFileSourceDeadLetters(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"testdata/statements.jsonl", `testdata/statements.jsonl:4: column "verb": required
testdata/statements.jsonl:5: not JSON: invalid character 'n' looking for beginning of object key string at byte 2
testdata/statements.jsonl:7: column "id": expected a UUID, got "not-a-uuid"`},
		{"testdata/statements.json", `testdata/statements.json:2: column "verb": statement 2 of the array: required`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := readFile(t, map[string]any{"path": tt.path})
			if err != nil {
				t.Fatal(err)
			}
			if s := deadStrings(got.dead); s != tt.want {
				t.Errorf("dead letters:\n%s\nwant\n%s", s, tt.want)
			}
		})
	}
}

func TestFileSourceBundle(t *testing.T) {
	got, err := readFile(t, map[string]any{"path": "../../examples/data/bundle/xapi/statements.jsonl", "raw": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.dead) != 0 || len(got.rows) < 100 {
		t.Fatalf("%d rows, dead letters:\n%s", len(got.rows), deadStrings(got.dead))
	}
	first := strings.Split(got.rows[0], "|")
	if first[1] != "S0001" || first[2] != "https://ent.vigie.example" || first[5] != "a consulté" || first[19] != "ENT Vigie" {
		t.Errorf("first row %q", got.rows[0])
	}
	if !strings.HasPrefix(first[20], `{"id":"7d5acc92`) {
		t.Errorf("raw statement %q", first[20])
	}
}

func TestFileSourceFail(t *testing.T) {
	_, err := readFile(t, map[string]any{"path": "testdata/statements.jsonl", "on_error": "fail"})
	if err == nil || !strings.Contains(err.Error(), `testdata/statements.jsonl:4: verb: required (on_error = "fail")`) {
		t.Fatalf("err = %v", err)
	}
}
