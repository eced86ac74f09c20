package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logOf writes a log of n run entries and returns its path.
func logOf(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "p.audit.jsonl")
	for i := range n {
		e, _, err := Append(path, Entry{Event: EventRun, Pipeline: "p", Inputs: []Stage{{Name: "grades", Connector: "csv", Rows: int64(100 + i)}}})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i+1, e.Seq)
		}
	}
	return path
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, path string, l []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(l, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, path string)
		line   int    // 0: the log verifies
		msg    string // in the error
	}{
		{name: "untouched", tamper: func(*testing.T, string) {}},
		{name: "edited middle entry", line: 2, msg: "edited", tamper: func(t *testing.T, path string) {
			l := lines(t, path)
			l[1] = strings.Replace(l[1], `"rows":101`, `"rows":1`, 1)
			writeLines(t, path, l)
		}},
		{name: "edited last entry", line: 5, msg: "last line was edited", tamper: func(t *testing.T, path string) {
			l := lines(t, path)
			l[4] = strings.Replace(l[4], `"rows":104`, `"rows":4`, 1)
			writeLines(t, path, l)
		}},
		{name: "deleted middle entry", line: 3, msg: "inserted or deleted", tamper: func(t *testing.T, path string) {
			l := lines(t, path)
			writeLines(t, path, append(l[:2:2], l[3:]...))
		}},
		{name: "deleted last entry", line: 4, msg: "deleted from the end", tamper: func(t *testing.T, path string) {
			writeLines(t, path, lines(t, path)[:4])
		}},
		{name: "deleted first entry", line: 1, msg: "inserted or deleted", tamper: func(t *testing.T, path string) {
			writeLines(t, path, lines(t, path)[1:])
		}},
		{name: "inserted entry", line: 4, msg: "inserted or deleted", tamper: func(t *testing.T, path string) {
			l := lines(t, path)
			forged := strings.Replace(l[2], `"rows":102`, `"rows":7`, 1)
			writeLines(t, path, append(l[:3:3], append([]string{forged}, l[3:]...)...))
		}},
		{name: "inserted entry renumbered", line: 3, msg: "edited", tamper: func(t *testing.T, path string) {
			// A forger who also renumbers the entries after the insert
			// still breaks the chain.
			l := lines(t, path)
			out := append([]string(nil), l[:3]...)
			out = append(out, strings.Replace(l[2], `"seq":3`, `"seq":4`, 1))
			for i, s := range l[3:] {
				out = append(out, strings.Replace(s, `"seq":`+string(rune('4'+i)), `"seq":`+string(rune('5'+i)), 1))
			}
			writeLines(t, path, out)
		}},
		{name: "not JSON", line: 2, msg: "not an audit entry", tamper: func(t *testing.T, path string) {
			l := lines(t, path)
			l[1] = "garbage"
			writeLines(t, path, l)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := logOf(t, 5)
			tt.tamper(t, path)
			n, err := Verify(path)
			if tt.line == 0 {
				if err != nil || n != 5 {
					t.Fatalf("Verify = %d, %v; want 5 entries", n, err)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %d, %v; want a VerifyError at line %d", n, err, tt.line)
			}
			if ve.Line != tt.line || !strings.Contains(ve.Msg, tt.msg) {
				t.Errorf("error %q at line %d, want line %d and %q", ve.Msg, ve.Line, tt.line, tt.msg)
			}
		})
	}
}

func TestAppendChains(t *testing.T) {
	path := logOf(t, 2)
	l := lines(t, path)
	if !strings.Contains(l[0], `"prev":"`+Genesis+`"`) || !strings.Contains(l[1], `"prev":"`+hashLine([]byte(l[0]))+`"`) {
		t.Errorf("chain:\n%s", strings.Join(l, "\n"))
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing log verified")
	}
}

// FuzzVerify: any content of a log, with or without a head, is verified
// or refused, never a panic; an accepted log counts its lines.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"seq":1,"prev":"`+Genesis+`"}`+"\n"), "1 x\n")
	f.Add([]byte("garbage\n\n"), "")
	f.Fuzz(func(t *testing.T, log []byte, head string) {
		path := filepath.Join(t.TempDir(), "a.jsonl")
		if err := os.WriteFile(path, log, 0o600); err != nil {
			t.Fatal(err)
		}
		if head != "" {
			if err := os.WriteFile(HeadPath(path), []byte(head), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		n, err := Verify(path)
		if err == nil && n != strings.Count(string(log), "\n")+boolInt(len(log) > 0 && log[len(log)-1] != '\n') {
			t.Errorf("verified %d entries in %q", n, log)
		}
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
