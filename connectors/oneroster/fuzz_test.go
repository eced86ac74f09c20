package oneroster_test

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead feeds an arbitrary enrollments.csv (after a fixed header) to the
// source, with the users, classes and orgs of the 1.2 fixture to check
// references against: it must not panic, and every record must give a row
// or a dead letter.
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
		n := 0
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
		r.FieldsPerRecord = -1
		for {
			if _, err := r.Read(); err == io.EOF {
				break
			}
			n++
		}
		if len(c.rows)+len(c.dead) != n-1 {
			t.Fatalf("%d records, %d rows + %d dead letters", n-1, len(c.rows), len(c.dead))
		}
	})
}
