package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigie-edu/vigie/engine/stream"
)

// TestDeadLetterExpire: a continuous run's dead letters are cut by age
// while it runs; what is left, and what comes after, is published whole.
func TestDeadLetterExpire(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "dl.csv")
	d := newDeadLetterFile(path)
	write := func(reasons ...string) {
		t.Helper()
		var rows []stream.DeadLetter
		for _, r := range reasons {
			rows = append(rows, stream.DeadLetter{Stage: "s", Origin: "in.csv", Line: 3, Reason: r, Raw: "a,b"})
		}
		if err := d.WriteDeadLetters(rows); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d.expire(time.Now()); n != 0 || err != nil {
		t.Fatalf("expire of nothing: %d, %v", n, err)
	}
	write("old one", "old two")
	write("old three")
	cut := time.Now()
	time.Sleep(time.Millisecond)
	write("kept")
	if n, err := d.expire(cut); n != 3 || err != nil {
		t.Fatalf("expire = %d, %v; want 3 rows", n, err)
	}
	if n, err := d.expire(cut); n != 0 || err != nil {
		t.Fatalf("second expire = %d, %v; want 0", n, err)
	}
	write("after")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "stage,origin,line,column,reason,raw\ns,in.csv,3,,kept,\"a,b\"\ns,in.csv,3,,after,\"a,b\"\n"
	if string(b) != want {
		t.Errorf("published:\n%s\nwant:\n%s", b, want)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".dl.csv.*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if strings.Contains(string(b), "old") {
		t.Error("expired rows published")
	}
}

// TestDeadLetterResume: in a run with checkpoints the dead letter file is
// cut, at a restart, to what the last committed checkpoint recorded, and
// written on; what the killed run wrote after it (replayed, so written
// again) appears once, and the killed runs' other temporary files go.
func TestDeadLetterResume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	path := filepath.Join(dir, "dl.csv")
	write := func(d *deadLetterFile, reasons ...string) {
		t.Helper()
		var rows []stream.DeadLetter
		for _, r := range reasons {
			rows = append(rows, stream.DeadLetter{Stage: "s", Origin: "events", Reason: r, Raw: "x"})
		}
		if err := d.WriteDeadLetters(rows); err != nil {
			t.Fatal(err)
		}
	}
	d1 := newDeadLetterFile(path)
	if err := d1.resume(nil); err != nil {
		t.Fatal(err)
	}
	if pos, err := d1.checkpoint(); pos != nil || err != nil {
		t.Fatalf("checkpoint before any dead letter: %+v, %v", pos, err)
	}
	write(d1, "one", "two")
	pos, err := d1.checkpoint()
	if err != nil || pos == nil || pos.Rows != 2 {
		t.Fatalf("checkpoint: %+v, %v; want 2 rows", pos, err)
	}
	d1.committed(pos)
	write(d1, "three") // after the checkpoint: the killed run's
	// A run killed before it ever checkpointed left this one.
	garbage := filepath.Join(dir, ".dl.csv.12345")
	if err := os.WriteFile(garbage, []byte("stage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// d1's process dies: no Close.
	d1.f.Close()

	d2 := newDeadLetterFile(path)
	if err := d2.resume(pos); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(garbage); !os.IsNotExist(err) {
		t.Errorf("temporary file of a killed run still there: %v", err)
	}
	write(d2, "three", "four") // the replay, then what follows
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "stage,origin,line,column,reason,raw\ns,events,,,one,x\ns,events,,,two,x\ns,events,,,three,x\ns,events,,,four,x\n"
	if string(b) != want {
		t.Errorf("published:\n%s\nwant:\n%s", b, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".dl.csv.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestDeadLetterExpireKeepsCheckpointed: retention replaces the file a
// committed checkpoint may name; the old one stays until a checkpoint
// naming the new one committed.
func TestDeadLetterExpireKeepsCheckpointed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.csv")
	d := newDeadLetterFile(path)
	if err := d.resume(nil); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteDeadLetters([]stream.DeadLetter{{Stage: "s", Reason: "old"}}); err != nil {
		t.Fatal(err)
	}
	pos, err := d.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	d.committed(pos)
	if n, err := d.expire(time.Now().Add(time.Second)); n != 1 || err != nil {
		t.Fatalf("expire = %d, %v", n, err)
	}
	if _, err := os.Stat(pos.Temp); err != nil {
		t.Fatalf("the file the last checkpoint names is gone before the next one: %v", err)
	}
	next, err := d.checkpoint()
	if err != nil || next.Temp == pos.Temp || next.Rows != 0 {
		t.Fatalf("checkpoint after expire: %+v, %v", next, err)
	}
	d.committed(next)
	if _, err := os.Stat(pos.Temp); !os.IsNotExist(err) {
		t.Errorf("replaced file still there after the next checkpoint: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDeadLetterResumePublished: a run whose last checkpoint was
// committed, then its file published (the run ended, or was killed
// between the two), is followed by one that goes on with the published
// file: with nothing to add it publishes it again, never removes it.
func TestDeadLetterResumePublished(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.csv")
	d1 := newDeadLetterFile(path)
	if err := d1.resume(nil); err != nil {
		t.Fatal(err)
	}
	if err := d1.WriteDeadLetters([]stream.DeadLetter{{Stage: "s", Reason: "one"}}); err != nil {
		t.Fatal(err)
	}
	pos, err := d1.checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}
	for _, more := range []string{"", "two"} {
		d := newDeadLetterFile(path)
		if err := d.resume(pos); err != nil {
			t.Fatal(err)
		}
		if more != "" {
			if err := d.WriteDeadLetters([]stream.DeadLetter{{Stage: "s", Reason: more}}); err != nil {
				t.Fatal(err)
			}
		}
		if pos, err = d.checkpoint(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "stage,origin,line,column,reason,raw\ns,,,,one,\ns,,,,two,\n"; string(b) != want {
		t.Errorf("published:\n%s\nwant:\n%s", b, want)
	}
}
