package atomicfile

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "out.txt")
	if err := PrepareDir(path); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path, "")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("destination exists before Commit: %v", err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := f.Abort(); err != nil { // no-op after Commit
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "hello" {
		t.Errorf("content = %q", b)
	}
	g, err := Create(path, "")
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString("half")
	if err := g.Abort(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d entries after Abort, want 1", len(entries))
	}
	if b, _ := os.ReadFile(path); string(b) != "hello" {
		t.Errorf("content after Abort = %q", b)
	}
	if err := PrepareDir(dir); err == nil {
		t.Error("PrepareDir accepted a folder as the output file")
	}
}

// Sweep removes the leftovers of its owner's dead writers, nothing else:
// not the file kept, not other owners' or other outputs' files, not files
// that only look alike.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	if got := Owner("absence demo", "out/csv"); got != "absence_demo.out_csv" {
		t.Errorf("Owner = %q", got)
	}
	mine := Owner("p", "out")
	var files []string
	for _, owner := range []string{mine, mine, mine, Owner("p", "out_2"), Owner("q", "out"), ""} {
		f, err := Create(path, owner)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		files = append(files, filepath.Base(f.Name()))
	}
	other, err := Create(filepath.Join(dir, "other.csv"), mine)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	lookalike := ".out.csv.tmp-" + mine + "-12x"
	os.WriteFile(filepath.Join(dir, lookalike), nil, 0o644)

	Sweep(path, "", "") // no owner: nothing
	Sweep(path, mine, filepath.Join(dir, files[1]))
	want := append([]string{files[1]}, files[3:]...)
	want = append(want, filepath.Base(other.Name()), lookalike)
	sort.Strings(want)
	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after Sweep:\n got %q\nwant %q", got, want)
	}
	// A resume position must name a file of the same owner.
	if _, err := Resume(path, Owner("q", "out"), filepath.Join(dir, files[1]), 0); err == nil {
		t.Error("Resume accepted another owner's file")
	}
	if f, err := Resume(path, mine, filepath.Join(dir, files[1]), 0); err != nil {
		t.Error(err)
	} else if err := f.Commit(); err != nil { // sweeps too: nothing of mine left
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(dir, files[1])); !os.IsNotExist(err) {
		t.Errorf("resumed file still there after Commit: %v", err)
	}
}

// Reopen resumes the temporary file while it is there, else starts a new
// one from the first size bytes of the committed file, and leaves the
// committed file alone until the next Commit.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	f, err := Create(path, "p.out")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("head\nrow1\n")
	size, err := f.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("row2\n") // after the checkpoint
	tmp := f.Name()
	f.Close() // the writer dies

	g, err := Reopen(path, "p.out", tmp, size)
	if err != nil {
		t.Fatal(err)
	}
	if g.Name() != tmp {
		t.Errorf("Reopen started %s, want the temporary file %s resumed", g.Name(), tmp)
	}
	g.WriteString("row2b\n")
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}

	h, err := Reopen(path, "p.out", tmp, size) // tmp was committed into place
	if err != nil {
		t.Fatal(err)
	}
	if h.Name() == tmp {
		t.Fatal("Reopen reused the committed temporary file's name")
	}
	if b, _ := os.ReadFile(path); string(b) != "head\nrow1\nrow2b\n" {
		t.Errorf("before Commit the destination holds %q, want it unchanged", b)
	}
	h.WriteString("row3\n")
	if err := h.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "head\nrow1\nrow3\n" {
		t.Errorf("content = %q, want the first %d bytes and the new row", b, size)
	}

	for name, tc := range map[string]struct {
		tmp  string
		size int64
	}{
		"past the end":     {tmp, 1 << 20},
		"not a temporary":  {filepath.Join(dir, "other"), size},
		"another owner's":  {filepath.Join(dir, ".out.csv.tmp-q.out-1"), size},
		"another folder's": {filepath.Join(t.TempDir(), filepath.Base(tmp)), size},
	} {
		t.Run(name, func(t *testing.T) {
			if f, err := Reopen(path, "p.out", tc.tmp, tc.size); err == nil {
				f.Abort()
				t.Errorf("Reopen accepted %s at %d bytes", tc.tmp, tc.size)
			}
		})
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if f, err := Reopen(path, "p.out", tmp, size); err == nil {
		f.Abort()
		t.Error("Reopen started from a committed file that is gone")
	}
}

// An aborted writer leaves a file it handed out a position in (a
// checkpoint may name it): the writer restarted from that checkpoint
// resumes from it. Before that, Abort removes it.
func TestAbortKeepsPositionedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	f, err := Create(path, "p.s")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("a\nb\n")
	size, err := f.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("c\n") // past the position: dropped by the resume
	tmp := f.Name()
	if err := f.Abort(); err != nil {
		t.Fatal(err)
	}
	g, err := Resume(path, "p.s", tmp, size)
	if err != nil {
		t.Fatalf("resume after Abort: %v", err)
	}
	g.WriteString("d\n")
	if err := g.Abort(); err != nil { // a resumed file is positioned too
		t.Fatal(err)
	}
	h, err := Resume(path, "p.s", tmp, size)
	if err != nil {
		t.Fatalf("second resume after Abort: %v", err)
	}
	h.WriteString("e\n")
	if err := h.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a\nb\ne\n" {
		t.Errorf("content = %q, want %q", b, "a\nb\ne\n")
	}
	// Not positioned: removed.
	n, err := Create(path, "p.s")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(n.Name()); !os.IsNotExist(err) {
		t.Errorf("unpositioned temporary file left after Abort: %v", err)
	}
}
