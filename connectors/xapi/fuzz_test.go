package xapi

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/internal/linecount"
	"github.com/vigie-edu/vigie/connectors/jsonl"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

func seeds(f *testing.F) {
	// The small files only: the fuzzer minimises what it finds, slowly
	// for inputs of several kilobytes.
	for _, name := range []string{"spec_simple.json", "statements.jsonl"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"actor": {"objectType": "Group", "member": [{"mbox": "mailto:a@b"}]}, "verb": {"id": "x:y"}, "object": {"objectType": "SubStatement", "actor": {"openid": "http://o"}, "verb": {"id": "a:b"}, "object": {"objectType": "StatementRef", "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"}}, "result": {"score": {"scaled": 1, "raw": 5, "min": 0, "max": 5}, "duration": "P1Y2M3W4DT5H6M7.5S"}}`))
	f.Add([]byte("[{\"actor\": null}, 3, \"x\", {\"verb\": {\"id\": 4}}]"))
}

type counter struct {
	rows, dead int64
	dl         []protocol.DeadLetter
}

func (c *counter) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	c.rows += rec.NumRows()
	return nil
}

func (c *counter) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	for _, d := range rows {
		if d.Line <= 0 || d.Reason == "" {
			panic("dead letter without a line or a reason")
		}
	}
	c.dead += int64(len(rows))
	c.dl = append(c.dl, rows...)
	return nil
}

// FuzzStatement checks that any input is either a statement that
// flattens or an Invalid with a reason, without a panic.
//
//	go test ./connectors/xapi -run '^$' -fuzz FuzzStatement -fuzztime 3m
func FuzzStatement(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, inv := parse(data)
		if (s == nil) == (inv == nil) {
			t.Fatalf("parse returned %v and %v", s, inv)
		}
		if inv != nil {
			if inv.Reason == "" {
				t.Fatal("an invalid statement without a reason")
			}
			return
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		b := array.NewRecordBuilder(mem, Schema(true))
		s.appendRow(b, data)
		rec := b.NewRecordBatch()
		if rec.NumRows() != 1 {
			t.Fatalf("%d rows", rec.NumRows())
		}
		rec.Release()
		b.Release()
		mem.AssertSize(t, 0)
	})
}

// FuzzFile checks the file decoder: as JSON Lines every non-blank line is
// a row or a dead letter; as a JSON document it never panics and reads
// or reports something unless the input is blank.
//
//	go test ./connectors/xapi -run '^$' -fuzz FuzzFile -fuzztime 3m
func FuzzFile(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, doc := range []bool{false, true} {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			p := &filePlan{onError: onErrorDeadLetter, batchRows: 2, schema: Schema(false)}
			c := &counter{}
			d := newDecoder(p, mem, c)
			d.pos = filePosition{Path: "fuzz"}
			var err error
			if doc {
				err = d.readDocument(context.Background(), bytes.NewReader(data))
			} else {
				err = d.readLines(context.Background(), jsonl.NewLines(bytes.NewReader(data), 0, 0))
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := d.flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			d.release()
			mem.AssertSize(t, 0)
			blank := len(bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))) == 0
			if doc {
				if !blank && c.rows+c.dead == 0 && !bytes.Equal(bytes.TrimSpace(data), []byte("[]")) {
					t.Fatalf("a JSON document read to nothing: %q", data)
				}
				continue
			}
			// Every line is a row, a dead letter with its line and text, or blank.
			if _, err := linecount.Check(data, c.rows, c.dl); err != nil {
				t.Fatal(err)
			}
		}
	})
}
