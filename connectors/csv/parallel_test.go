package csv

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// splitInto makes the rest of the test read files in parallel ranges of
// n bytes with workers goroutines (0 bytes: never in parallel).
func splitInto(t *testing.T, n int64, workers int) {
	t.Helper()
	rb, min, w := rangeBytes, parallelMinBytes, parallelWorkers
	t.Cleanup(func() { rangeBytes, parallelMinBytes, parallelWorkers = rb, min, w })
	if n == 0 {
		parallelMinBytes = 1 << 62
		return
	}
	rangeBytes, parallelMinBytes, parallelWorkers = n, 0, workers
}

// trace records what a read emits, in order.
type trace struct {
	rows    []string              // every row, its values joined by |
	dead    []protocol.DeadLetter // every dead letter
	batches []int                 // rows per batch
	// Per batch and dead letter in arrival order: "b OFFSET" (the
	// position's offset) or "d LINE".
	events []string
	last   position
}

func (tr *trace) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	var p position
	if err := json.Unmarshal(pos, &p); err != nil {
		return err
	}
	tr.last = p
	tr.batches = append(tr.batches, int(rec.NumRows()))
	tr.events = append(tr.events, fmt.Sprintf("b %d", p.Offset))
	for i := 0; i < int(rec.NumRows()); i++ {
		vals := make([]string, rec.NumCols())
		for j, col := range rec.Columns() {
			if col.IsNull(i) {
				vals[j] = "∅"
			} else {
				vals[j] = col.ValueStr(i)
			}
		}
		tr.rows = append(tr.rows, strings.Join(vals, "|"))
	}
	return nil
}

func (tr *trace) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	for _, d := range rows {
		tr.dead = append(tr.dead, d)
		tr.events = append(tr.events, fmt.Sprintf("d %d", d.Line))
	}
	return nil
}

// readTrace reads cfg with a checked allocator.
func readTrace(t *testing.T, cfg protocol.Config) (*trace, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tr := &trace{}
	err := Source{}.Read(context.Background(), cfg, mem, tr)
	return tr, err
}

// checkOrder checks that every dead letter arrives after the batches
// before its record and before the batches after it: a batch's position
// (the offset after its rows) is at most the offset where a later dead
// letter's record starts, and past a dead letter's record that came
// before it.
func checkOrder(t *testing.T, text string, tr *trace) {
	t.Helper()
	lineStarts := []int64{0, 0} // line n starts at lineStarts[n]
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			lineStarts = append(lineStarts, int64(i+1))
		}
	}
	var deadBefore []int64 // record starts of the dead letters so far
	lastBatch := int64(0)
	for _, e := range tr.events {
		var n int64
		switch {
		case strings.HasPrefix(e, "b "):
			fmt.Sscan(e[2:], &n)
			for _, d := range deadBefore {
				if d >= n {
					t.Errorf("events %v: batch at %d comes after a dead letter at offset %d past it", tr.events, n, d)
				}
			}
			if n < lastBatch {
				t.Errorf("events %v: positions go back", tr.events)
			}
			lastBatch = n
		default:
			fmt.Sscan(e[2:], &n)
			start := lineStarts[n]
			if start < lastBatch {
				t.Errorf("events %v: dead letter of line %d (offset %d) comes after a batch at %d", tr.events, n, start, lastBatch)
			}
			deadBefore = append(deadBefore, start)
		}
	}
}

// hostile are inputs whose records cross range boundaries in every way.
var hostile = map[string]string{
	"quoted line breaks": "id,name,n\n" + strings.Repeat("1,\"a\nb\",2\n2,\"\n\n\",3\n3,plain,4\n4,\"x,\"\"y\"\"\nz\",5\n", 12),
	"bad rows": "id,name,n\n" + strings.Repeat("1,a,2\n", 10) + "2,b,x\n" + strings.Repeat("3,c,4\n", 10) +
		"4,\"d\ne\",oops\n" + strings.Repeat("5,f,6\n", 5) + "6,g\n7,h,8,9\n\n8,i,10\n",
	"open quotes": "id,name,n\n1,\"never closes,2\n" + strings.Repeat("2,b,3\n", 8) + "3,a\"b,4\n4,\"c\"d,5\n" +
		strings.Repeat("5,\"q\nr\",6\n", 6) + "6,\"tail,7\n7,\"x\n",
	"CRLF and no final line end": "id,name,n\r\n" + strings.Repeat("1,\"a\r\nb\",2\r\n2,c,3\r\n", 9) + "3,d,4",
	"multi-line wrong fields":    "id,name,n\n" + strings.Repeat("1,\"a\nb\n\",2\n2,\"c\n3,d,4\n5,e\",6,7\n", 6),
	"one long record":            "id,name,n\n1,\"" + strings.Repeat("long line\n", 40) + "\",2\n2,b,3\n3,c,4\n",
}

// TestParallelMatchesSequential: reading in ranges of any size gives the
// rows, dead letters (lines, reasons, text) and positions of the
// sequential read, every dead letter before the batch covering it.
func TestParallelMatchesSequential(t *testing.T) {
	inputs := map[string]string{}
	for k, v := range hostile {
		inputs[k] = v
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 6 {
		inputs[fmt.Sprintf("random %d", i)] = randomCSV(rng, 300)
	}
	policies := []string{onErrorDeadLetter, onErrorSkip}
	for name, text := range inputs {
		for _, policy := range policies {
			t.Run(name+"/"+policy, func(t *testing.T) {
				cfg := config(writeFile(t, text), 4, map[string]any{
					"columns": map[string]any{"id": "int64", "name": "utf8", "n": "int64"}, "on_error": policy, "max_record_lines": 50})
				splitInto(t, 0, 0)
				want, err := readTrace(t, cfg)
				if err != nil {
					t.Fatal(err)
				}
				for _, size := range []int64{1, 5, 13, 64, 200} {
					for _, workers := range []int{2, 3} {
						splitInto(t, size, workers)
						got, err := readTrace(t, cfg)
						if err != nil {
							t.Fatalf("ranges of %d bytes: %v", size, err)
						}
						if !reflect.DeepEqual(got.rows, want.rows) {
							t.Fatalf("ranges of %d bytes, %d workers: rows\n%q\nwant\n%q", size, workers, got.rows, want.rows)
						}
						if !reflect.DeepEqual(got.dead, want.dead) {
							t.Fatalf("ranges of %d bytes, %d workers: dead letters\n%+v\nwant\n%+v", size, workers, got.dead, want.dead)
						}
						checkOrder(t, text, got)
						if policy == onErrorDeadLetter && got.last.Offset != int64(len(text)) {
							t.Errorf("ranges of %d bytes: last position %d, want the end of the text, %d", size, got.last.Offset, len(text))
						}
					}
				}
			})
		}
	}
}

// randomCSV is n lines of fields made of letters, digits, commas, quotes
// and line breaks, mostly well formed.
func randomCSV(rng *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString("id,name,n\n")
	for i := range n {
		name := "x"
		switch rng.IntN(10) {
		case 0:
			name = "\"a\nb\""
		case 1:
			name = "\"a,\"\"b\"\"\""
		case 2:
			name = "\"open"
		case 3:
			name = "\"\n\n,\""
		case 4:
			name = "y\"z"
		}
		num := fmt.Sprint(rng.IntN(100))
		if rng.IntN(25) == 0 {
			num = "bad"
		}
		fmt.Fprintf(&b, "%d,%s,%s\n", i, name, num)
	}
	return b.String()
}

// TestParallelBadRowInSecondRange: a bad row in the second range, after a
// quoted line break that crosses the first boundary, is dead-lettered with
// its line in the file, and reading more than one range in parallel did
// happen (the ranges end batches early).
func TestParallelBadRowInSecondRange(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,name,n\n") // line 1
	for i := 2; i <= 40; i++ {   // lines 2-40
		fmt.Fprintf(&b, "%d,name %d,%d\n", i, i, i)
	}
	b.WriteString("41,\"two\nlines\",41\n") // lines 41-42
	for i := 43; i <= 80; i++ {             // lines 43-80
		fmt.Fprintf(&b, "%d,name %d,%d\n", i, i, i)
	}
	b.WriteString("81,bad,x\n")        // line 81
	b.WriteString("82,\"a,\nb\",82\n") // lines 82-83
	text := b.String()
	boundary := int64(strings.Index(text, "two\n") + 4) // right after the quoted line break
	splitInto(t, boundary, 2)
	cfg := config(writeFile(t, text), 1000, map[string]any{"columns": map[string]any{"n": "int64"}})
	got, err := readTrace(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.batches) < 2 {
		t.Errorf("batches %v: expected one per range at least (is the file read in parallel?)", got.batches)
	}
	if len(got.rows) != 79 {
		t.Errorf("%d rows, want 79", len(got.rows))
	}
	if len(got.rows) > 39 && got.rows[39] != "41|two\nlines|41" {
		t.Errorf("row 40 = %q, want the record over two lines", got.rows[39])
	}
	want := []protocol.DeadLetter{{Origin: cfg.Options["path"].(string), Line: 81, Column: "n", Reason: `expected int64, got "x"`, Raw: "81,bad,x"}}
	if !reflect.DeepEqual(got.dead, want) {
		t.Errorf("dead letters %+v, want %+v", got.dead, want)
	}
	checkOrder(t, text, got)

	// A read resumed from any batch's position gives the rows after it.
	tr := got
	rowsBefore := 0
	for i, n := range tr.batches[:len(tr.batches)-1] {
		rowsBefore += n
		var off int64
		fmt.Sscan(strings.TrimPrefix(tr.events[i+countDeadBefore(tr.events, i)], "b "), &off)
		c := cfg
		c.Resume, _ = protocol.NewPosition(position{File: 0, Path: cfg.Options["path"].(string), Offset: off})
		again, err := readTrace(t, c)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again.rows, tr.rows[rowsBefore:]) {
			t.Errorf("resumed at %d: %d rows, want the last %d", off, len(again.rows), len(tr.rows)-rowsBefore)
		}
	}
}

// countDeadBefore returns the dead letter events before batch i.
func countDeadBefore(events []string, i int) int {
	n, batches := 0, 0
	for _, e := range events {
		if strings.HasPrefix(e, "b ") {
			if batches == i {
				return n
			}
			batches++
		} else {
			n++
		}
	}
	return n
}

// FuzzParallel: any UTF-8 text after a header reads the same in ranges of
// any size as sequentially: rows, dead letters, their order. Text that is
// not UTF-8 is made so: such a file is read as Windows-1252 (sniffed), never
// in ranges, and its positions are offsets in the decoded text, which
// checkOrder's line starts in the raw text would not match.
//
//	go test ./connectors/csv -run '^$' -fuzz FuzzParallel -fuzztime 1m
func FuzzParallel(f *testing.F) {
	for _, text := range hostile {
		f.Add([]byte(strings.TrimPrefix(strings.ReplaceAll(text, "\r\n", "\n"), "id,name,n\n")), uint8(5))
	}
	f.Add([]byte("1,\"a\n\"\"b\",2\n2,\"x"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, size uint8) {
		text := "id,name,n\n" + strings.ToValidUTF8(string(data), "\uFFFD")
		cfg := config(writeFile(t, text), 3, map[string]any{
			"columns": map[string]any{"id": "int64", "name": "utf8", "n": "int64"}, "max_record_lines": 4})
		splitInto(t, 0, 0)
		want, errWant := readTrace(t, cfg)
		splitInto(t, int64(size%64)+1, 2)
		got, errGot := readTrace(t, cfg)
		if fmt.Sprint(errGot) != fmt.Sprint(errWant) {
			t.Fatalf("error %v, sequentially %v", errGot, errWant)
		}
		if !reflect.DeepEqual(got.rows, want.rows) {
			t.Fatalf("rows\n%q\nsequentially\n%q", got.rows, want.rows)
		}
		if !reflect.DeepEqual(got.dead, want.dead) {
			t.Fatalf("dead letters\n%+v\nsequentially\n%+v", got.dead, want.dead)
		}
		checkOrder(t, text, got)
	})
}

// TestParallelBOM: a file that starts with a UTF-8 byte order mark reads
// the same in ranges; positions are offsets in the text after the mark.
func TestParallelBOM(t *testing.T) {
	text := "id,name,n\n" + strings.Repeat("1,\"a\nb\",2\n2,c,x\n3,d,4\n", 10)
	cfg := config(writeFile(t, "\ufeff"+text), 4, map[string]any{"columns": map[string]any{"n": "int64"}})
	splitInto(t, 0, 0)
	want, err := readTrace(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{1, 7, 16, 50} {
		splitInto(t, size, 2)
		got, err := readTrace(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.rows, want.rows) || !reflect.DeepEqual(got.dead, want.dead) {
			t.Fatalf("ranges of %d bytes: %d rows, %d dead letters; sequentially %d, %d", size, len(got.rows), len(got.dead), len(want.rows), len(want.dead))
		}
		if len(got.batches) <= len(want.batches) {
			t.Errorf("ranges of %d bytes: %d batches, sequentially %d: not read in ranges?", size, len(got.batches), len(want.batches))
		}
		checkOrder(t, text, got)
		if got.last.Offset != int64(len(text)) {
			t.Errorf("ranges of %d bytes: last position %d, want %d", size, got.last.Offset, len(text))
		}
	}
}

// TestParallelColumnsMatchSequential: the ranges parsed into columns
// (columns.go) give the rows, nulls and dead letters of the sequential
// read for every column type, with null markers, text in and out of
// ASCII, invalid UTF-8, CRLF line ends, values only the general parse
// reads (" 12", "-3", "yes", 2025-9-1) and rows of the wrong width.
func TestParallelColumnsMatchSequential(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// pick returns one of good, or rarely (1 in 40) one of bad.
	pick := func(good []string, bad ...string) string {
		if len(bad) > 0 && rng.IntN(40) == 0 {
			return bad[rng.IntN(len(bad))]
		}
		return good[rng.IntN(len(good))]
	}
	var b strings.Builder
	b.WriteString("id,name,n,small,score,ok,day,at\r\n")
	for i := range 600 {
		fields := []string{
			fmt.Sprint(i),
			pick([]string{"Léa", "Zoé Ñ", "plain", "", "NA", "NULL", "a b"}, "x\xffy"),
			pick([]string{"12", "-3", " 12", "NA", "7"}, "99999999999999999999", "x"),
			pick([]string{"1", "123456789", "", "-2"}, "1234567890"),
			pick([]string{"1.5", "2", "-0.25", "1e3", ""}, "nan", "3,5"),
			pick([]string{"true", "false", "yes", "TRUE", ""}, "maybe"),
			pick([]string{"2025-09-01", "2025-9-1", "", "2024-02-29"}, "2025-02-30"),
			pick([]string{"2025-09-01T08:30:00Z", "2025-09-01 08:30:00", ""}, "soon"),
		}
		line := strings.Join(fields, ",")
		switch rng.IntN(40) {
		case 0:
			line += ",extra"
		case 1:
			line = strings.Join(fields[:5], ",")
		case 2:
			line = ""
		case 3:
			line = strings.Replace(line, "plain", "\"quoted, text\"", 1)
		}
		end := "\n"
		if rng.IntN(3) == 0 {
			end = "\r\n"
		}
		b.WriteString(line + end)
	}
	text := b.String()
	for _, policy := range []string{onErrorDeadLetter, onErrorSkip} {
		t.Run(policy, func(t *testing.T) {
			cfg := config(writeFile(t, text), 16, map[string]any{
				"columns": map[string]any{"id": "int64", "name": "utf8", "n": "int64", "small": "int32",
					"score": "float64", "ok": "bool", "day": "date32", "at": "timestamp_us"},
				"on_error": policy, "encoding": "utf-8"})
			splitInto(t, 0, 0)
			want, err := readTrace(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkOrder(t, text, want)
			if len(want.rows) < 100 || len(want.dead) == 0 && policy == onErrorDeadLetter {
				t.Fatalf("%d rows, %d dead letters: the input should give both", len(want.rows), len(want.dead))
			}
			for _, size := range []int64{7, 300, 4096} {
				splitInto(t, size, 2)
				got, err := readTrace(t, cfg)
				if err != nil {
					t.Fatalf("ranges of %d bytes: %v", size, err)
				}
				if !reflect.DeepEqual(got.rows, want.rows) {
					for i := range min(len(got.rows), len(want.rows)) {
						if got.rows[i] != want.rows[i] {
							t.Fatalf("ranges of %d bytes: row %d = %q, want %q", size, i, got.rows[i], want.rows[i])
						}
					}
					t.Fatalf("ranges of %d bytes: %d rows, want %d", size, len(got.rows), len(want.rows))
				}
				if !reflect.DeepEqual(got.dead, want.dead) {
					t.Fatalf("ranges of %d bytes: dead letters\n%+v\nwant\n%+v", size, got.dead, want.dead)
				}
				checkOrder(t, text, got)
			}
		})
	}
}

// TestParallelColumnsInferred: the attendance benchmark's shape, types
// inferred, a few nulls: the same rows in ranges as sequentially, and
// batches that end at batch_rows.
func TestParallelColumnsInferred(t *testing.T) {
	var b strings.Builder
	b.WriteString("student_id,day,half_days,absent_half_days,justified\n")
	for i := range 3000 {
		absent := fmt.Sprint(i % 3)
		if i%97 == 0 {
			absent = ""
		}
		fmt.Fprintf(&b, "S%07d,2025-09-%02d,%d,%s,%v\n", i%700, 1+i/700, 1+i%2, absent, i%5 == 0)
	}
	text := b.String()
	cfg := config(writeFile(t, text), 256, nil)
	splitInto(t, 0, 0)
	want, err := readTrace(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	splitInto(t, 10_000, 2)
	got, err := readTrace(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.rows, want.rows) || len(got.dead) != 0 {
		t.Fatalf("%d rows, %d dead letters; sequentially %d rows", len(got.rows), len(got.dead), len(want.rows))
	}
	if got.rows[0] != "S0000000|2025-09-01|1|∅|true" {
		t.Errorf("first row %q", got.rows[0])
	}
	for i, n := range got.batches {
		if n > 256 {
			t.Errorf("batch %d holds %d rows, more than batch_rows", i, n)
		}
	}
	if len(got.batches) <= len(want.batches) {
		t.Errorf("%d batches, sequentially %d: not read in ranges?", len(got.batches), len(want.batches))
	}
}

// BenchmarkParallelAttendance reads 1M rows shaped like the attendance
// benchmark's (bench/attendance: an identifier, a day, two small counts,
// a bool; about 30 MB) through the source, in ranges parsed in parallel.
// Two workers whatever GOMAXPROCS: with -cpu 1, ns/op is the CPU time.
func BenchmarkParallelAttendance(b *testing.B) {
	w := parallelWorkers
	b.Cleanup(func() { parallelWorkers = w })
	parallelWorkers = 2
	var sb strings.Builder
	sb.WriteString("student_id,day,half_days,absent_half_days,justified\n")
	for i := range 1_000_000 {
		fmt.Fprintf(&sb, "S%07d,2025-09-%02d,%d,%d,%v\n", i%100_000, 1+i/100_000, 1+i%2, i%3, i%5 == 0)
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

// TestASCII: a byte of 0x80 or more anywhere, in the 8-byte words or in
// the tail, makes a line not ASCII.
func TestASCII(t *testing.T) {
	for n := 0; n <= 20; n++ {
		line := []byte(strings.Repeat("a", n))
		if !ascii(line) {
			t.Fatalf("%q: not ASCII?", line)
		}
		for i := 0; i < n; i++ {
			bad := append([]byte(nil), line...)
			bad[i] = 0xC3
			if ascii(bad) {
				t.Errorf("%d bytes, 0xC3 at %d: taken for ASCII", n, i)
			}
		}
	}
}
