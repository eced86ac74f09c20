package oneroster_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// FuzzRead feeds an arbitrary enrollments.csv (after a fixed header) to the
// source, with the users, classes and orgs of the 1.2 fixture to check
// references against: it must not panic, and every line must be the
// header, a row or a dead letter with its text (TestLineAccounting checks
// the exact count on generated files).
func FuzzRead(f *testing.F) {
	for _, p := range []string{"broken/enrollments.csv", "v12/enrollments.csv"} {
		b, err := os.ReadFile(fixture(p))
		if err != nil {
			f.Fatal(err)
		}
		_, body, _ := bytes.Cut(b, []byte("\n"))
		f.Add(body)
	}
	f.Add([]byte("E1,tobedeleted,,,,,,,,\n\"E2\",active,2025-08-29,K-2A-MATHS,0750001A,U-S1,student,TRUE,2025-09-01T00:00:00+02:00,\"x\ny\"\n"))
	f.Add([]byte("E1,active,x\"y,,,,,,,\n"))
	header := "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n"
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		for _, name := range []string{"manifest.csv", "users.csv", "classes.csv", "orgs.csv"} {
			b, err := os.ReadFile(fixture(filepath.Join("v12", name)))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		data := append([]byte(header), body...)
		if err := os.WriteFile(filepath.Join(dir, "enrollments.csv"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := read(t, map[string]any{"path": dir, "table": "enrollments"})
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n"))
		if data[len(data)-1] != '\n' {
			lines++
		}
		checkDead(t, c.dead, lines)
		// Each row and dead letter takes at least one line of its own.
		if used := 1 + len(c.rows) + deadLines(c.dead); used > lines {
			t.Fatalf("%d rows + %d dead-lettered lines + header = %d > %d lines", len(c.rows), deadLines(c.dead), used, lines)
		}
	})
}

// deadLines counts the lines the dead letters hold.
func deadLines(dead []protocol.DeadLetter) int {
	n := 0
	for _, d := range dead {
		n += strings.Count(d.Raw, "\n") + 1
	}
	return n
}

// checkDead checks that every dead letter has a reason and the text of its
// lines, starting past the header, and that their line ranges do not
// overlap or pass the end of the file.
func checkDead(t *testing.T, dead []protocol.DeadLetter, lines int) {
	t.Helper()
	next := int64(2)
	for _, d := range dead {
		if d.Reason == "" || d.Raw == "" || d.Line < next {
			t.Fatalf("dead letter without a reason or text, or at line %d before %d: %+v", d.Line, next, d)
		}
		next = d.Line + int64(strings.Count(d.Raw, "\n")) + 1
	}
	if next > int64(lines)+1 {
		t.Fatalf("dead letters go on to line %d, past the %d lines", next-1, lines)
	}
}

// TestLineAccounting reads generated enrollments.csv files (good rows,
// quotes that never close or close lines later, stray quotes, quoted line
// breaks in a text column, empty lines, wrong field counts, bad values):
// every line is the header, a row (1 + the line breaks in its values), a
// dead letter (with its text) or empty.
func TestLineAccounting(t *testing.T) {
	const good = "E%d,active,2025-08-29,K-2A-MATHS,0750001A,U-S1,student,TRUE,2025-09-01T00:00:00+02:00,2026-07-04T00:00:00+02:00\n"
	pieces := []string{
		"E%d,\"active,2025-08-29,K-2A-MATHS,0750001A,U-S1,student,TRUE,,\n",
		"E%d,active,2025-08-29,\"K-2A\nMATHS\",0750001A,U-S1,student,TRUE,,\n",
		"E%d,act\"ive,2025-08-29,K-2A-MATHS,0750001A,U-S1,student,TRUE,,\n",
		"\n",
		"E%d,active\n",
		"E%d,active,2025-13-45,K-2A-MATHS,0750001A,U-S1,student,TRUE,,\n",
		"E%d,\"active\n,2025-08-29\",K-2A-MATHS,0750001A,U-S1,student,TRUE,,,extra\n",
	}
	header := "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n"
	r := rand.New(rand.NewPCG(12, 4))
	for k := range 100 {
		var b strings.Builder
		b.WriteString(header)
		empty := 0
		for i := range r.IntN(60) {
			p := good
			if r.IntN(3) == 0 {
				p = pieces[r.IntN(len(pieces))]
			}
			if p == "\n" {
				empty++
				b.WriteString(p)
				continue
			}
			fmt.Fprintf(&b, p, i)
		}
		data := b.String()
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range []string{"manifest.csv", "users.csv", "classes.csv", "orgs.csv"} {
				content, err := os.ReadFile(fixture(filepath.Join("v12", name)))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, name), content, 0o644)
			}
			if err := os.WriteFile(filepath.Join(dir, "enrollments.csv"), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := read(t, map[string]any{"path": dir, "table": "enrollments", "check_references": false})
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Count(data, "\n")
			checkDead(t, c.dead, lines)
			rows := 0
			for _, row := range c.rows {
				rows += 1 + strings.Count(row, "\n")
			}
			if got := 1 + rows + deadLines(c.dead) + empty; got != lines {
				t.Fatalf("%d lines in, 1 header + %d in rows + %d dead-lettered + %d empty = %d\n%s\n%v",
					lines, rows, deadLines(c.dead), empty, got, data, deadStrings(c.dead))
			}
		})
	}
}
