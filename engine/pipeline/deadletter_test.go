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
