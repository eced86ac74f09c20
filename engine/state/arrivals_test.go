package state

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestArrivalsDeleteAbove: rows and progress are versioned by arrival
// sequence; storing a row twice keeps one; DeleteAbove rolls one
// partition back to a cut and leaves the others.
func TestArrivalsDeleteAbove(t *testing.T) {
	s, err := OpenTemp(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sp := spec()
	a, err := s.Arrivals(sp)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rows := []row{{"A", 3, 1}, {"A", 1, 2}, {"B", 2, 3}, {"A", 2, 4}}
	rec := record(mem, rows)
	defer rec.Release()
	write := func(p uint32) {
		t.Helper()
		w := Write{Progress: map[uint32]Progress{}}
		for i := range rows {
			g, o, r := a.Encode(rec, i)
			w.Put = append(w.Put, Entry{Partition: p, Group: g, Order: o, Seq: uint64(10 + i), Row: r})
			v, _ := a.OrderValue(o)
			pr := w.Progress[p]
			pr.Mark, pr.Marked, pr.Seq, pr.Any = max(pr.Mark, v), true, uint64(10+i), true
			w.Progress[p] = pr
		}
		// Progress is versioned: write it after every row, as a stage
		// writes it after every micro-batch.
		if err := a.Commit(w); err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			pr := Progress{Mark: int64(i), Marked: true, Seq: uint64(10 + i), Any: true}
			if err := a.Commit(Write{Progress: map[uint32]Progress{p: pr}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0)
	write(0) // a replay: no-op
	write(7)
	seqs := func(p uint32, key string) string {
		t.Helper()
		g, _, _ := a.Encode(rec, map[string]int{"A": 0, "B": 2}[key])
		es, err := a.Load(p, g)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return fmt.Sprint(out)
	}
	if got := seqs(0, "A"); got != "[11 13 10]" { // by day: 1, 2, 3
		t.Fatalf("partition 0, key A: %s", got)
	}
	vs := s.Versions(sp.Stage)
	if err := vs.Commit([]VersionWrite{{0, []byte("A"), 10, []byte("v10")}, {0, []byte("A"), 12, []byte("v12")}, {7, []byte("A"), 12, []byte("p7")}}); err != nil {
		t.Fatal(err)
	}
	before := func(p uint32, seq uint64) string {
		t.Helper()
		v, ok, err := vs.Before(p, []byte("A"), seq)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return "none"
		}
		return string(v)
	}
	if got := before(0, 10) + " " + before(0, 11) + " " + before(0, 13); got != "none v10 v12" {
		t.Fatalf("versions before 10, 11, 13: %s", got)
	}

	if err := s.DeleteAbove(sp.Stage, 0, 11); err != nil {
		t.Fatal(err)
	}
	if got := seqs(0, "A"); got != "[11 10]" {
		t.Errorf("after rollback to 11, partition 0 key A: %s", got)
	}
	if got := seqs(0, "B"); got != "[]" {
		t.Errorf("after rollback to 11, partition 0 key B (seq 12): %s", got)
	}
	if got := seqs(7, "A"); got != "[11 13 10]" {
		t.Errorf("partition 7 must not change: %s", got)
	}
	pr, err := a.Progress(0)
	if err != nil {
		t.Fatal(err)
	}
	if pr.Seq != 11 || pr.Mark != 1 {
		t.Errorf("progress after rollback: %+v, want seq 11 mark 1", pr)
	}
	if pr, _ := a.Progress(7); pr.Seq != 13 {
		t.Errorf("progress of partition 7: %+v", pr)
	}
	if pr, err := s.Progress(sp.Stage, 0); err != nil || pr.Seq != 11 || !pr.Any {
		t.Errorf("Store.Progress of partition 0: %+v, %v", pr, err)
	}
	if got := before(0, 100) + " " + before(7, 100); got != "v10 p7" {
		t.Errorf("versions after rollback: %s", got)
	}
}

// TestReaderLoadsKeysInAnyOrder: one Reader returns each key's rows, and
// only that key's, whatever the order the keys are asked in (forward,
// backward, twice), including a key that is a prefix of another's
// string and keys of other partitions; the rows decode as stored.
func TestReaderLoadsKeysInAnyOrder(t *testing.T) {
	s, err := OpenTemp(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.Arrivals(spec())
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rows := []row{{"A", 3, 1}, {"AB", 1, 2}, {"A", 1, 3}, {"B", 2, 4}, {"AB", 5, 5}, {"", 4, 6}}
	rec := record(mem, rows)
	defer rec.Release()
	var w Write
	groups := map[string][]byte{}
	for _, p := range []uint32{0, 1, 256} {
		for i, r := range rows {
			g, o, v := a.Encode(rec, i)
			groups[r.student] = g
			w.Put = append(w.Put, Entry{Partition: p, Group: g, Order: o, Seq: uint64(p)*100 + uint64(i), Row: v})
		}
	}
	if err := a.Commit(w); err != nil {
		t.Fatal(err)
	}
	// Row indexes of each key, by day then sequence.
	want := map[string][]int{"A": {2, 0}, "AB": {1, 4}, "B": {3}, "": {5}}
	r, err := a.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bs, _ := a.Builders(mem)
	defer func() {
		for _, b := range bs {
			b.Release()
		}
	}()
	decoded := 0
	for _, p := range []uint32{256, 0, 1, 0, 256} {
		for _, key := range []string{"B", "AB", "A", "", "A", "B", "C"} {
			g := groups[key]
			if key == "C" {
				g = append(append([]byte(nil), groups["B"]...), 'x')
			}
			es, err := r.Load(p, g)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []string
			for _, e := range es {
				if e.Partition != p || string(e.Group) != string(g) {
					t.Fatalf("partition %d key %q: entry of partition %d group %q", p, key, e.Partition, e.Group)
				}
				if err := a.Decode(e.Row, bs); err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, fmt.Sprintf("%d", e.Seq))
			}
			var exp []string
			for _, k := range want[key] {
				exp = append(exp, fmt.Sprint(uint64(p)*100+uint64(k)))
			}
			if !slices.Equal(seqs, exp) {
				t.Errorf("partition %d key %q: seqs %v, want %v", p, key, seqs, exp)
			}
			for _, b := range bs { // the rows decoded: as many as entries
				if b.Len() != decoded+len(es) {
					t.Fatalf("builder has %d rows, want %d", b.Len(), decoded+len(es))
				}
			}
			decoded += len(es)
		}
	}
}

// TestRollBackProgress: Cut records each partition's last sequence;
// after progress written past it (a run killed after its checkpoint), and
// in a partition first seen after it, RollBackProgress brings every
// partition's progress back to the cut, the rows stay, and another stage
// is left alone.
func TestRollBackProgress(t *testing.T) {
	s, err := OpenTemp(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sp := spec()
	a, err := s.Arrivals(sp)
	if err != nil {
		t.Fatal(err)
	}
	other := spec()
	other.Stage = sp.Stage + "2"
	b, err := s.Arrivals(other)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec := record(mem, []row{{"A", 3, 1}})
	defer rec.Release()
	progress := func(a *Arrivals, p uint32, seq uint64, mark int64) {
		t.Helper()
		w := Write{Progress: map[uint32]Progress{p: {Mark: mark, Marked: true, Seq: seq, Any: true}}}
		g, o, r := a.Encode(rec, 0)
		w.Put = []Entry{{Partition: p, Group: g, Order: o, Seq: seq, Row: r}}
		if err := a.Commit(w); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []uint64{1, 2, 3} {
		progress(a, 0, seq, int64(10*seq))
		progress(a, 1<<31, seq+100, int64(seq))
		progress(b, 0, seq, int64(seq))
	}
	cut, err := s.Cut(sp.Stage)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uint32]uint64{0: 3, 1 << 31: 103}; !maps.Equal(cut, want) {
		t.Fatalf("cut = %v, want %v", cut, want)
	}
	// The killed run goes on: the watermark of partition 0 moves far.
	progress(a, 0, 4, 1000)
	progress(a, 0, 5, 2000)
	progress(a, 5, 1, 7) // first seen after the cut
	progress(b, 0, 9, 9) // another stage: not rolled back

	n, err := s.RollBackProgress(sp.Stage, cut)
	if err != nil || n != 2 {
		t.Fatalf("RollBackProgress = %d, %v; want 2 partitions rolled back", n, err)
	}
	for p, want := range map[uint32]Progress{0: {Mark: 30, Marked: true, Seq: 3, Any: true}, 1 << 31: {Mark: 3, Marked: true, Seq: 103, Any: true}, 5: {}} {
		if got, err := a.Progress(p); err != nil || got != want {
			t.Errorf("progress of partition %d after the roll back: %+v, %v; want %+v", p, got, err, want)
		}
	}
	if got, _ := b.Progress(0); got.Seq != 9 {
		t.Errorf("the other stage's progress: %+v, want it left at 9", got)
	}
	g, _, _ := a.Encode(rec, 0)
	if es, err := a.Load(0, g); err != nil || len(es) != 5 {
		t.Errorf("rows of partition 0 after the roll back: %d, %v; want the 5 stored kept", len(es), err)
	}
	if n, err := s.RollBackProgress(sp.Stage, cut); err != nil || n != 0 {
		t.Errorf("a second roll back: %d, %v; want nothing to do", n, err)
	}
}
