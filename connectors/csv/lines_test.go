package csv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// unterminatedExport is the export of issue 12: n data lines after a header,
// every fiftieth (2 %) with a quote that never closes.
func unterminatedExport(n int) string {
	var b strings.Builder
	b.WriteString("id,name,score,date\n")
	for i := 1; i <= n; i++ {
		if i%50 == 21 {
			fmt.Fprintf(&b, "%d,\"nom%d,1.5,2025-10-01\n", i, i)
		} else {
			fmt.Fprintf(&b, "%d,nom%d,1.5,2025-10-01\n", i, i)
		}
	}
	return b.String()
}

// BenchmarkCSVSource reads a 200,000-row school export (one quoted field
// in ten, some spanning two lines) through the source.
func BenchmarkCSVSource(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("student_id,name,date,half_days,absent_half_days,score\n")
	for i := range 200_000 {
		name := fmt.Sprintf("nom%d", i)
		switch i % 10 {
		case 3:
			name = fmt.Sprintf("\"Nom, %d\"", i)
		case 7:
			if i%1000 == 7 {
				name = fmt.Sprintf("\"Nom\n%d\"", i)
			}
		}
		fmt.Fprintf(&sb, "S%06d,%s,2025-%02d-%02d,%d,%d,%d.%d\n", i%5000, name, 9+i%4, 1+i%28, 2, i%3, i%20, i%10)
	}
	path := writeFile(b, sb.String())
	cfg := config(path, 0, nil)
	b.SetBytes(int64(sb.Len()))
	mem := memory.NewGoAllocator()
	for b.Loop() {
		if err := (Source{}).Read(context.Background(), cfg, mem, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

// discard is an Emitter that drops what it receives.
type discard struct{}

func (discard) Emit(context.Context, arrow.RecordBatch, protocol.Position) error { return nil }
func (discard) DeadLetter(context.Context, []protocol.DeadLetter) error          { return nil }

// lineCount is how the physical lines of a file ended.
type lineCount struct {
	total, rows, dead, header int
}

// checkLines reads cfg's file (one file, utf8 or inferred columns) twice:
// once as configured, once with every column declared utf8 so that a row's
// values keep its line breaks. It checks, against an independent count of
// the file's lines, that every physical line ends in exactly one row, dead
// letter or header line: rows out (1 + line breaks in their values) + lines
// of the dead letters (1 + line breaks in their raw text) + header lines =
// lines in; that the dead letters' line ranges do not overlap and hold
// text; and that the typed read splits the file into the same records.
func checkLines(t *testing.T, cfg protocol.Config) lineCount {
	t.Helper()
	p, err := newPlan(context.Background(), cfg)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	path := p.files[0]
	typed, err := read(t, cfg)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	cols := map[string]any{}
	for _, f := range p.schema.Fields() {
		cols[f.Name] = "utf8"
	}
	text := protocol.Config{Connector: cfg.Connector, BatchRows: cfg.BatchRows, Options: map[string]any{}}
	maps.Copy(text.Options, cfg.Options)
	text.Options["columns"] = cols
	c, err := read(t, text)
	if err != nil {
		t.Fatalf("read as text: %v", err)
	}
	if got, want := len(typed.rows)+len(typed.dead), len(c.rows)+len(c.dead); got != want {
		t.Fatalf("typed read: %d rows + %d dead letters, read as text: %d + %d: not the same records",
			len(typed.rows), len(typed.dead), len(c.rows), len(c.dead))
	}

	in, err := openInput(path, p.encoding)
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(in.text)
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	n := lineCount{total: bytes.Count(all, []byte{'\n'}), header: p.headerLines}
	if len(all) > 0 && all[len(all)-1] != '\n' {
		n.total++
	}
	for _, row := range c.rows {
		n.rows++
		for _, v := range row {
			n.rows += strings.Count(v, "\n")
		}
	}
	next := int64(n.header + 1) // the first line a dead letter may start on
	for _, d := range typed.dead {
		if d.Origin != path || d.Reason == "" {
			t.Fatalf("dead letter without file or reason: %+v", d)
		}
		if d.Line < next {
			t.Fatalf("dead letter at line %d overlaps the one before or the header (next free line %d): %+v", d.Line, next, d)
		}
		next = d.Line + int64(strings.Count(d.Raw, "\n")) + 1
	}
	if next > int64(n.total)+1 {
		t.Fatalf("dead letters go on to line %d, past the %d lines of the file", next-1, n.total)
	}
	for _, d := range c.dead {
		n.dead += strings.Count(d.Raw, "\n") + 1
	}
	if n.rows+n.dead+n.header != n.total {
		t.Fatalf("%d lines in, %d in rows + %d dead-lettered + %d header = %d (%d rows, %d dead letters)",
			n.total, n.rows, n.dead, n.header, n.rows+n.dead+n.header, len(c.rows), len(c.dead))
	}
	return n
}

// TestUnterminatedQuotes reads the export of issue 12 (20,000 lines, 2 %
// with a quote that never closes): each bad line is one dead letter with
// its text and line, every other line a row.
func TestUnterminatedQuotes(t *testing.T) {
	path := writeFile(t, unterminatedExport(20000))
	for _, lazy := range []bool{false, true} {
		t.Run(fmt.Sprintf("lazy_quotes=%v", lazy), func(t *testing.T) {
			cfg := config(path, 0, map[string]any{"lazy_quotes": lazy})
			n := checkLines(t, cfg)
			if n != (lineCount{total: 20001, rows: 19600, dead: 400, header: 1}) {
				t.Errorf("lines: %+v, want 19600 rows, 400 dead-lettered, 1 header of 20001", n)
			}
			c, err := read(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for k, d := range c.dead {
				i := 21 + 50*k
				want := fmt.Sprintf("%d,\"nom%d,1.5,2025-10-01", i, i)
				if d.Line != int64(i+1) || d.Raw != want {
					t.Fatalf("dead letter %d: line %d raw %q, want line %d raw %q", k, d.Line, d.Raw, i+1, want)
				}
			}
		})
	}
}

// TestLineAccounting checks the line accounting on generated files: good
// rows, quotes that never close or close lines later, stray quotes, quoted
// line breaks, empty lines, wrong field counts, CRLF, no final line end,
// small max_record_lines.
func TestLineAccounting(t *testing.T) {
	pieces := []func(r *rand.Rand, i int) string{
		func(r *rand.Rand, i int) string {
			return fmt.Sprintf("%d,nom%d,%d.5,2025-10-%02d\n", i, i, r.IntN(20), 1+r.IntN(28))
		},
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,\"nom%d,1.5,2025-10-01\n", i, i) },
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,\"nom\n%d\",1.5,2025-10-01\n", i, i) },
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,\"a \"\"b\"\"\",1.5,2025-10-01\r\n", i) },
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,no\"m,1.5,2025-10-01\n", i) },
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,\"x\"y,1.5,2025-10-01\n", i) },
		func(r *rand.Rand, i int) string { return "\n" },
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,nom%d\n", i, i) },
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,nom%d,x,2025-10-01\n", i, i) },
		func(r *rand.Rand, i int) string { return "\"\n" },
		func(r *rand.Rand, i int) string { return fmt.Sprintf("%d,\"nom\n\n%d,1.5\",2025-10-01,extra\n", i, i) },
	}
	r := rand.New(rand.NewPCG(12, 2))
	for k := range 300 {
		var b strings.Builder
		b.WriteString("id,name,score,date\n")
		for i := range r.IntN(60) {
			if r.IntN(3) == 0 {
				b.WriteString(pieces[r.IntN(len(pieces))](r, i))
			} else {
				b.WriteString(pieces[0](r, i))
			}
		}
		text := b.String()
		if r.IntN(4) == 0 {
			text = strings.TrimSuffix(text, "\n")
		}
		path := writeFile(t, text)
		opts := map[string]any{"lazy_quotes": r.IntN(2) == 0, "max_record_lines": int64(1 + r.IntN(5))}
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			checkLines(t, config(path, 1+r.IntN(10), opts))
		})
	}
}

// TestMalformedRecords: a record that cannot be split, or spans lines with
// the wrong number of fields, gives its first line as a dead letter and
// reading resumes on the line after it.
func TestMalformedRecords(t *testing.T) {
	type dl struct {
		line   int64
		raw    string
		reason string // contained in the reason
	}
	for _, tt := range []struct {
		name, text string
		opts       map[string]any
		rows       [][]string
		dead       []dl
	}{{
		name: "quote closed lines later",
		text: "id,name,n\n1,\"a\n2,b\",3,4\n3,c,5\n",
		rows: [][]string{{"3", "c", "5"}},
		dead: []dl{{2, `1,"a`, "expected 3 fields, got 4 in a record over 2 lines"}, {3, `2,b",3,4`, `bare "`}},
	}, {
		name: "past max_record_lines",
		text: "id,name\n1,\"a\nb\nc\"\n2,d\n",
		opts: map[string]any{"max_record_lines": int64(2)},
		rows: [][]string{{"2", "d"}},
		dead: []dl{{2, `1,"a`, `does not close within 2 lines (option "max_record_lines")`}, {3, "b", "expected 2 fields, got 1"}, {4, `c"`, `bare "`}},
	}, {
		name: "within max_record_lines",
		text: "id,name\n1,\"a\nb\nc\"\n2,d\n",
		opts: map[string]any{"max_record_lines": int64(3)},
		rows: [][]string{{"1", "a\nb\nc"}, {"2", "d"}},
	}, {
		name: "open at the end of the file",
		text: "id,name\n1,ok\n2,\"never\n",
		opts: map[string]any{"lazy_quotes": true},
		rows: [][]string{{"1", "ok"}},
		dead: []dl{{3, `2,"never`, "does not close before the end of the file"}},
	}, {
		name: "lazy quotes: a stray quote in a field over lines",
		text: "id,name\n1,\"a\n2,b\"c\",x\n3,d\n",
		opts: map[string]any{"lazy_quotes": true},
		rows: [][]string{{"3", "d"}},
		dead: []dl{{2, `1,"a`, "holds a stray quote at line 3 column 4"}, {3, `2,b"c",x`, "expected 2 fields, got 3"}},
	}, {
		name: "lazy quotes: a field over lines",
		text: "id,name\n1,\"a\nb\"\n",
		opts: map[string]any{"lazy_quotes": true},
		rows: [][]string{{"1", "a\nb"}},
	}, {
		name: "empty line",
		text: "id,name\n1,a\n\r\n2,b",
		rows: [][]string{{"1", "a"}, {"2", "b"}},
		dead: []dl{{3, "", "empty line, expected 2 fields"}},
	}, {
		name: "empty line of a one-column file",
		text: "id\n1\n\n2\n",
		rows: [][]string{{"1"}, {"∅"}, {"2"}},
	}, {
		name: "value fault over lines",
		text: "id,name,n\n1,\"a\nb\",x\n2,c,3\n",
		opts: map[string]any{"columns": map[string]any{"n": "int64"}},
		rows: [][]string{{"2", "c", "3"}},
		dead: []dl{{2, "1,\"a\nb\",x", `expected int64, got "x"`}},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(writeFile(t, tt.text), 0, tt.opts)
			checkLines(t, cfg)
			c, err := read(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.rows, tt.rows) {
				t.Errorf("rows = %q, want %q", c.rows, tt.rows)
			}
			if len(c.dead) != len(tt.dead) {
				t.Fatalf("dead letters = %+v, want %d", c.dead, len(tt.dead))
			}
			for i, d := range c.dead {
				w := tt.dead[i]
				if d.Line != w.line || d.Raw != w.raw || !strings.Contains(d.Reason, w.reason) {
					t.Errorf("dead letter %d = line %d raw %q reason %q, want line %d raw %q reason with %q",
						i, d.Line, d.Raw, d.Reason, w.line, w.raw, w.reason)
				}
			}
		})
	}
}
