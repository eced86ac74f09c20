package jsonl

import (
	"bytes"
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/internal/linecount"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

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

// FuzzDecode checks that the decoder never panics and that every non-blank
// line is either a row or a dead letter.
//
//	go test ./connectors/jsonl -run '^$' -fuzz FuzzDecode -fuzztime 3m
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id": 1, "s": {"n": "a"}, "f": 1.5, "b": true, "d": "2025-09-01", "t": "2025-09-01T08:30:00Z"}` + "\n"))
	f.Add([]byte("{\"id\": \"x\"}\n[1]\nnull\n{\"s\": 3}\r\n\n{\"id\": 1e400}\n{\"s\": {\"n\": null}}\n{"))
	f.Add([]byte(`{"id": 9223372036854775807, "f": -0, "d": "2025-02-30", "t": "2025-09-01 08:30:00"}`))
	f.Add([]byte("\ufeff{\"id\": 1}\n{\"extra\": 1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, strict := range []bool{false, true} {
			p, err := columnsPlan(protocol.Config{Connector: SourceName, BatchRows: 3, Options: map[string]any{
				"path": "fuzz.jsonl", "strict": strict,
				"columns": map[string]any{"id": "int64", "i": "int32", "s.n": "utf8", "f": "float64", "b": "bool", "d": "date32", "t": "timestamp_us"},
			}})
			if err != nil {
				t.Fatal(err)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			c := &counter{}
			d := newDecoder(p, mem, c)
			if err := d.read(context.Background(), NewLines(bytes.NewReader(data), 0, 0), position{Path: "fuzz.jsonl"}); err != nil {
				t.Fatal(err)
			}
			if err := d.flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			d.release()
			mem.AssertSize(t, 0)
			// Every line is a row, a dead letter with its line and text, or blank.
			if _, err := linecount.Check(data, c.rows, c.dl); err != nil {
				t.Fatal(err)
			}
		}
	})
}
