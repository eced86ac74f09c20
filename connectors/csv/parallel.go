package csv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/internal/csvrec"
)

// Parallel reading (see RATIONALE.md, "Parallel CSV reading"): the rest
// of a plain file (UTF-8, not gzipped, a regular file) is cut into ranges
// of rangeBytes bytes, parsed by several goroutines at once, and emitted in
// file order. A range's records are those that start in it; a goroutine
// does not know where the first of them starts (a quoted field may hold
// line breaks), so it guesses the first line start in its range and
// parses from there. Parsing from a record start is deterministic, so the
// guess holds exactly when the range before it, parsed from its own true
// start, ended there; when it does not, or when the range holds a bad row
// (whose dead letter needs the line number, which a range only knows once
// the ranges before it are counted), the range is parsed again in order
// from its true start, as the sequential reader would. Rows, dead letters,
// line numbers and positions are those of the sequential read.
var (
	// rangeBytes is the size of one range.
	rangeBytes int64 = 8 << 20
	// parallelMinBytes is the least text left in a file for it to be
	// read in parallel.
	parallelMinBytes int64 = 2 * rangeBytes
	// parallelWorkers is how many ranges are parsed at once; 0: GOMAXPROCS.
	parallelWorkers = 0
)

// errRedo stops a speculative parse at a bad row.
var errRedo = errors.New("csv: range holds a bad row, parsed again in order")

// textRange is one range of a file's text, [start, end) in text offsets.
type textRange struct{ start, end int64 }

// parsed is what a goroutine made of a range.
type parsed struct {
	start int64 // where it started parsing (the guess)
	end   int64 // the offset after its last record
	lines int   // lines from start to end
	recs  []arrow.RecordBatch
	ends  []int64 // the offset after the last record of each batch
	redo  bool    // it met a bad row
	err   error
}

func (p *parsed) release() {
	for _, r := range p.recs {
		r.Release()
	}
	p.recs = nil
}

// parallelText opens the file being read for reading in parallel from
// text offset start, if it qualifies; nil otherwise.
func (rd *reading) parallelText(start int64) (*os.File, int64, error) {
	workers := parallelWorkers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers < 2 || rd.in.gz != nil || rd.in.encoding != encUTF8 {
		return nil, 0, nil
	}
	st, err := rd.in.f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, 0, nil
	}
	size := st.Size() - rd.in.bom
	if size-start < parallelMinBytes {
		return nil, 0, nil
	}
	f, err := os.Open(rd.in.path)
	if err != nil {
		return nil, 0, fmt.Errorf("open csv file: %w", err)
	}
	return f, size, nil
}

// readParallel reads the text of the file being read from offset start
// (lineBefore lines before it) to its end, size, in ranges parsed in
// parallel, and emits the rows in order; b must be empty. It returns the
// offset it stopped at (size, or where a record that ends the file ends).
func (rd *reading) readParallel(ctx context.Context, mem memory.Allocator, f *os.File, start, size int64, lineBefore int, b *array.RecordBuilder) (int64, error) {
	var ranges []textRange
	for s := start; s < size; s += rangeBytes {
		ranges = append(ranges, textRange{s, min(s+rangeBytes, size)})
	}
	workers := parallelWorkers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(ranges))

	ctx, cancel := context.WithCancel(ctx)
	results := make([]chan parsed, len(ranges))
	for i := range results {
		results[i] = make(chan parsed, 1)
	}
	// At most workers+1 ranges are parsed or waiting to be emitted: that
	// bounds the memory.
	tokens := make(chan struct{}, workers+1)
	jobs := make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		for i := range ranges {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				results[i] <- rd.speculate(ctx, mem, f, ranges[i], i == 0, size)
			}
		}()
	}
	defer func() {
		cancel()
		wg.Wait()
		for _, ch := range results {
			select {
			case p := <-ch:
				p.release()
			default:
			}
		}
	}()

	next, line := start, lineBefore
	for i, rg := range ranges {
		var p parsed
		select {
		case p = <-results[i]:
		case <-ctx.Done():
			return next, ctx.Err()
		}
		<-tokens
		if p.err != nil {
			return next, p.err
		}
		if p.redo || p.start != next {
			p.release()
			end, lines, err := rd.inOrder(ctx, f, textRange{next, rg.end}, line, size, b)
			if err != nil {
				return next, err
			}
			next, line = end, line+lines
			continue
		}
		for j, rec := range p.recs {
			p.recs[j] = nil
			err := rd.out.EmitBatch(ctx, rec, position{File: rd.fi, Path: rd.files[rd.fi], Offset: p.ends[j]})
			rec.Release()
			if err != nil {
				p.release()
				return next, err
			}
		}
		next, line = p.end, line+p.lines
	}
	return next, nil
}

// rangeReader returns a reading of the current file over f from text
// offset from (the file's text ends at size): the plan's settings, the
// file's columns, its own CSV reader.
func (rd *reading) rangeReader(f *os.File, from, size int64) *reading {
	bom := rd.in.bom
	sr := io.NewSectionReader(f, bom+from, size-from)
	w := &reading{
		plan:    rd.plan,
		fi:      rd.fi,
		in:      &input{path: rd.in.path, encoding: rd.in.encoding},
		fmap:    rd.fmap,
		nfields: rd.nfields,
		out:     rd.out,
		vals:    make([]value, len(rd.types)),
	}
	w.r = w.reader(&input{text: bufio.NewReaderSize(sr, 256<<10)})
	w.r.AliasFields() // next copies what it keeps (into the builders)
	return w
}

// speculate parses the records that start in rg, from rg.start if exact,
// else from the first line start at or after it, into batches. It stops at
// the first bad row (redo).
func (rd *reading) speculate(ctx context.Context, mem memory.Allocator, f *os.File, rg textRange, exact bool, size int64) parsed {
	from := rg.start
	if !exact {
		var err error
		if from, err = lineStart(f, rd.in.bom, rg.start, size); err != nil {
			return parsed{err: err}
		}
	}
	p := parsed{start: from, end: from}
	if from >= rg.end {
		return p
	}
	w := rd.rangeReader(f, from, size)
	w.speculative = true
	if rd.fmap == nil && rd.comma < utf8.RuneSelf {
		if cols := newColumns(mem, rd.schema, rd.batchRows); cols != nil {
			defer cols.release()
			return w.speculateColumns(ctx, cols, p, rg.end)
		}
	}
	b := newBuilder(mem, rd.schema, rd.batchRows)
	defer b.Release()
	rows := 0
	for n := 0; from+w.r.InputOffset() < rg.end; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				p.release()
				return parsed{err: err}
			}
		}
		ok, err := w.next(ctx)
		if err == io.EOF {
			break
		}
		if err == errRedo {
			p.release()
			return parsed{start: from, redo: true}
		}
		if err != nil {
			p.release()
			return parsed{err: err}
		}
		if !ok {
			continue
		}
		w.appendRow(b)
		if rows++; rows == rd.batchRows {
			p.recs = append(p.recs, b.NewRecordBatch())
			p.ends = append(p.ends, from+w.r.InputOffset())
			rows = 0
		}
	}
	if rows > 0 {
		p.recs = append(p.recs, b.NewRecordBatch())
		p.ends = append(p.ends, from+w.r.InputOffset())
	}
	p.end = from + w.r.InputOffset()
	p.lines = w.r.Line()
	return p
}

// speculateColumns is speculate's loop into cols (see columns.go): p has
// its start, w reads from there, and the records that start before end
// are parsed.
func (w *reading) speculateColumns(ctx context.Context, cols *columns, p parsed, end int64) parsed {
	from := p.start
	for n := 0; from+w.r.InputOffset() < end; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				p.release()
				return parsed{err: err}
			}
		}
		raw, plain, err := w.r.NextPlain()
		if err == io.EOF {
			break
		}
		if err != nil {
			p.release()
			return parsed{err: fmt.Errorf("read %s: %w", w.files[w.fi], err)}
		}
		if !plain || !w.plainRow(cols, csvrec.Content(raw)) {
			if plain {
				w.r.Unread(raw)
			}
			ok, err := w.next(ctx)
			if err == io.EOF {
				break
			}
			if err == errRedo {
				p.release()
				return parsed{start: from, redo: true}
			}
			if err != nil {
				p.release()
				return parsed{err: err}
			}
			if !ok {
				continue
			}
			cols.appendValues(w.vals)
		}
		if cols.rows == w.batchRows {
			p.recs = append(p.recs, cols.batch())
			p.ends = append(p.ends, from+w.r.InputOffset())
		}
	}
	if cols.rows > 0 {
		p.recs = append(p.recs, cols.batch())
		p.ends = append(p.ends, from+w.r.InputOffset())
	}
	p.end = from + w.r.InputOffset()
	p.lines = w.r.Line()
	return p
}

// inOrder parses the records that start in rg, rg.start being a record
// start after lineBefore lines, as the sequential read does: dead letters
// with their lines, batches emitted as they fill (into b, empty). It
// returns the offset after the last record and the lines it read.
func (rd *reading) inOrder(ctx context.Context, f *os.File, rg textRange, lineBefore int, size int64, b *array.RecordBuilder) (int64, int, error) {
	if rg.start >= rg.end {
		return rg.start, 0, nil
	}
	w := rd.rangeReader(f, rg.start, size)
	w.r.SetLine(lineBefore)
	pos := func() position {
		return position{File: rd.fi, Path: rd.files[rd.fi], Offset: rg.start + w.r.InputOffset()}
	}
	rows := 0
	for n := 0; rg.start+w.r.InputOffset() < rg.end; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		ok, err := w.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			continue
		}
		w.appendRow(b)
		if rows++; rows == rd.batchRows {
			if err := rd.out.Emit(ctx, b, rows, pos()); err != nil {
				return 0, 0, err
			}
			rows = 0
		}
	}
	if err := rd.out.Emit(ctx, b, rows, pos()); err != nil {
		return 0, 0, err
	}
	return rg.start + w.r.InputOffset(), w.r.Line() - lineBefore, nil
}

// lineStart returns the first text offset at or after from that starts a
// line (from itself when the byte before it ends one), size if none.
func lineStart(f *os.File, bom, from, size int64) (int64, error) {
	if from == 0 {
		return 0, nil
	}
	buf := make([]byte, 64<<10)
	for off := from - 1; off < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], bom+off)
		for i := 0; i < n; i++ {
			if buf[i] == '\n' {
				return off + int64(i) + 1, nil
			}
		}
		off += int64(n)
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if n == 0 {
			break
		}
	}
	return size, nil
}
