package oneroster_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigie-edu/vigie/connectors/internal/linecount"
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
		lines := linecount.Lines(data)
		if err := linecount.CheckSpans(c.dead, lines); err != nil {
			t.Fatal(err)
		}
		// Each row and dead letter takes at least one line of its own.
		if used := 1 + len(c.rows) + linecount.DeadLines(c.dead); used > lines {
			t.Fatalf("%d rows + %d dead-lettered lines + header = %d > %d lines", len(c.rows), linecount.DeadLines(c.dead), used, lines)
		}
	})
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
		data, blank := linecount.Compose(r, header, good, pieces)
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
			if err := linecount.CheckRecords([]byte(data), c.rows, c.dead, blank); err != nil {
				t.Fatalf("%v\n%s\n%v", err, data, deadStrings(c.dead))
			}
		})
	}
}
