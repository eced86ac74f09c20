package parquet

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// partsRows reads the parts of dir in order, as text rows.
func partsRows(t *testing.T, dir string) [][]string {
	t.Helper()
	var rows [][]string
	for _, name := range names(t, dir) {
		if _, ok := partNumber(name); ok {
			r, _ := readRows(t, filepath.Join(dir, name))
			rows = append(rows, r...)
		}
	}
	return rows
}

// visible lists the parts of dir a reader of the folder sees (the
// temporary ones start with a dot).
func visible(t *testing.T, dir string) []string {
	t.Helper()
	out := []string{}
	for _, name := range names(t, dir) {
		if name[0] != '.' {
			out = append(out, name)
		}
	}
	return out
}

// In a checkpointed run the sink writes a folder of parts, one per flush
// that saw rows, published (renamed into place) only at the flush after
// the one that completed it or at Close: the engine flushes a sink again
// only after the checkpoint of its previous flush committed. A writer
// killed between a flush and its checkpoint's commit leaves a complete
// but unpublished part, which no reader saw; the next writer, opened from
// the last committed checkpoint's position, removes it with the
// temporary part of the rows written after it, and the parts after the
// replay hold every row once.
func TestPartsPerCheckpoint(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "out.parquet")
	cfg := config(dir, nil)
	cfg.Pipeline, cfg.Stage, cfg.Checkpointed = "p", "out", true
	flush := func(w protocol.Writer) (protocol.Position, partsPosition) {
		t.Helper()
		raw, err := w.(protocol.Flusher).Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var p partsPosition
		if err := protocol.DecodePosition(raw, &p); err != nil {
			t.Fatal(err)
		}
		return raw, p
	}

	w1 := open(t, cfg, mem)
	defer w1.Abort(ctx)            // frees what the "dead" writer held (an in-process test only)
	write(t, mem, w1, batches[:1]) // rows 0, 1
	cp1, p := flush(w1)            // checkpoint 1 records cp1
	if p.Parts != 1 || p.Rows != 2 || p.Pending == "" {
		t.Errorf("first flush: %+v, want 1 part of 2 rows, pending", p)
	}
	if got := visible(t, dir); len(got) != 0 {
		t.Errorf("before its checkpoint committed a reader sees %q, want no part", got)
	}
	// Checkpoint 1 committed; checkpoint 2 saw no rows.
	if _, p = flush(w1); p != (partsPosition{Parts: 1, Rows: 2}) {
		t.Errorf("a flush with nothing written: %+v, want part 1 published and no part added", p)
	}
	if got := visible(t, dir); !slices.Equal(got, []string{partName(1)}) {
		t.Errorf("after checkpoint 1 committed a reader sees %q, want %q", got, partName(1))
	}
	write(t, mem, w1, batches[1:2]) // row 2
	flush(w1)                       // part 2, but the checkpoint does not commit
	write(t, mem, w1, batches[2:])  // row 3, in a temporary part
	if got := visible(t, dir); !slices.Equal(got, []string{partName(1)}) {
		t.Errorf("before the kill a reader sees %q, want only %q: part 2's checkpoint never committed", got, partName(1))
	}
	// w1's process dies: no Close, no Abort.

	cfg.Resume = cp1 // its pending part was published since
	w2 := open(t, cfg, mem)
	if got := names(t, dir); !slices.Equal(got, []string{partName(1)}) {
		t.Errorf("after resuming from the first checkpoint the folder holds %q, want only %q", got, partName(1))
	}
	write(t, mem, w2, batches[1:]) // replayed: rows 2, 3
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{partName(1), partName(2)}) {
		t.Errorf("after the close the folder holds %q", got)
	}
	if got := partsRows(t, dir); !reflect.DeepEqual(got, wantRows) {
		t.Errorf("rows of the parts = %q\nwant %q", got, wantRows)
	}

	// A run from the beginning (no position) starts the folder over.
	cfg.Resume = nil
	w3 := open(t, cfg, mem)
	write(t, mem, w3, batches[:1])
	if err := w3.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("a run from the beginning, aborted, left %q", got)
	}
}

// A writer killed after its checkpoint committed but before its next
// flush leaves its last part pending. The next writer, opened from that
// checkpoint, keeps it (it is committed) and publishes it at its first
// flush; an aborted run leaves it pending too.
func TestPartsPendingAcrossRestart(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "out.parquet")
	cfg := config(dir, nil)
	cfg.Pipeline, cfg.Stage, cfg.Checkpointed = "p", "out", true

	w1 := open(t, cfg, mem)
	write(t, mem, w1, batches[:1])
	cp, err := w1.(protocol.Flusher).Flush(ctx) // committed, then the kill
	if err != nil {
		t.Fatal(err)
	}
	write(t, mem, w1, batches[1:2]) // past the checkpoint
	w1.Abort(ctx)                   // the run fails

	cfg.Resume = cp
	w2 := open(t, cfg, mem)
	if got := names(t, dir); len(got) != 1 || got[0][0] != '.' {
		t.Errorf("after resuming the folder holds %q, want the pending part only", got)
	}
	write(t, mem, w2, batches[1:])
	if _, err := w2.(protocol.Flusher).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := visible(t, dir); !slices.Equal(got, []string{partName(1)}) {
		t.Errorf("after the first flush of the new run a reader sees %q, want %q", got, partName(1))
	}
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{partName(1), partName(2)}) {
		t.Errorf("after the close the folder holds %q", got)
	}
	if got := partsRows(t, dir); !reflect.DeepEqual(got, wantRows) {
		t.Errorf("rows of the parts = %q\nwant %q", got, wantRows)
	}

	// A position naming a file that is not its part's temporary file is
	// refused.
	var p partsPosition
	if err := protocol.DecodePosition(cp, &p); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../x", partName(1), ".part-00000002.parquet.tmp-p.out-1", ".part-00000001.parquet.tmp-q.out-1"} {
		t.Run(bad, func(t *testing.T) {
			c := cfg
			var err error
			if c.Resume, err = protocol.NewPosition(partsPosition{Parts: p.Parts, Rows: p.Rows, Pending: bad}); err != nil {
				t.Fatal(err)
			}
			if w, err := (Sink{}).Open(ctx, c, mem, schema); err == nil {
				w.Abort(ctx)
				t.Errorf("Open accepted pending part %q", bad)
			}
		})
	}
}

// partNumber reads back partName, and nothing else.
func TestPartNames(t *testing.T) {
	for _, n := range []int64{1, 42, 99999999, 123456789012} {
		if got, ok := partNumber(partName(n)); !ok || got != n {
			t.Errorf("partNumber(%q) = %d, %v", partName(n), got, ok)
		}
	}
	for _, name := range []string{"part-.parquet", "part-1.parquet.tmp", ".part-00000001.parquet.tmp-p.out-1", "part-1a.parquet", "out.parquet"} {
		if n, ok := partNumber(name); ok {
			t.Errorf("partNumber(%q) = %d, want not a part", name, n)
		}
	}
}

// A checkpointed run refuses a path that is a file (a batch run's output).
func TestPartsRefuseAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.parquet")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config(path, nil)
	cfg.Checkpointed = true
	if err := (Sink{}).Validate(context.Background(), cfg); err == nil {
		t.Error("Validate accepted a file as the folder of parts")
	}
}
