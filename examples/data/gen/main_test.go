package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/csv"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// The committed files are what the generator writes: it is deterministic
// and they are up to date.
func TestCommittedFilesUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := generate(dir); err != nil {
		t.Fatal(err)
	}
	total, n := 0, 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		committed, err := os.ReadFile(filepath.Join("..", rel))
		if err != nil {
			t.Errorf("%s: %v: run go run ./examples/data/gen", rel, err)
			return nil
		}
		if !bytes.Equal(got, committed) {
			t.Errorf("%s differs from the generator's output: run go run ./examples/data/gen", rel)
		}
		total += len(got)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Errorf("generator wrote %d files, want the CSV tables and the bundle", n)
	}
	if total > 2<<20 {
		t.Errorf("example data is %d bytes, want less than 2 MiB", total)
	}
}

// counter is an Emitter that counts rows and keeps dead letters.
type counter struct {
	rows int
	dead []protocol.DeadLetter
}

func (c *counter) Emit(ctx context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	c.rows += int(rec.NumRows())
	return nil
}

func (c *counter) DeadLetter(ctx context.Context, rows []protocol.DeadLetter) error {
	c.dead = append(c.dead, rows...)
	return nil
}

func read(t *testing.T, name string, columns map[string]any) (*arrow.Schema, *counter) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cfg := protocol.Config{Connector: csv.SourceName, BatchRows: 1000,
		Options: map[string]any{"path": filepath.Join("..", name), "columns": columns}}
	schema, err := csv.Source{}.Schema(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	if err := (csv.Source{}).Read(context.Background(), cfg, mem, c); err != nil {
		t.Fatal(err)
	}
	return schema, c
}

var attendanceTypes = map[string]any{"half_days": "int32", "absent_half_days": "int32", "unjustified_half_days": "int32"}

func TestCleanFilesRead(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rows   int
		schema string
	}{
		{"students.csv", 600, "student_id:utf8 school_id:utf8 class_id:utf8 level:utf8 birth_year:int64"},
		{"attendance.csv", 6544, "student_id:utf8 class_id:utf8 month:utf8 half_days:int32 absent_half_days:int32 unjustified_half_days:int32"},
		{"grades.csv", 10716, "student_id:utf8 subject:utf8 period:utf8 mark:float64 status:utf8"},
	} {
		var columns map[string]any
		if tt.name == "attendance.csv" {
			columns = attendanceTypes
		}
		schema, c := read(t, tt.name, columns)
		if got := fields(schema); got != tt.schema {
			t.Errorf("%s: schema %s, want %s", tt.name, got, tt.schema)
		}
		if c.rows != tt.rows || len(c.dead) != 0 {
			t.Errorf("%s: %d rows and %d dead letters, want %d and none: %v", tt.name, c.rows, len(c.dead), tt.rows, c.dead)
		}
	}
}

func fields(s *arrow.Schema) string {
	out := ""
	for i, f := range s.Fields() {
		if i > 0 {
			out += " "
		}
		out += f.Name + ":" + f.Type.String()
	}
	return out
}

// The dirty file's faults are where README.md says.
func TestDirtyFile(t *testing.T) {
	_, c := read(t, "attendance_dirty.csv", attendanceTypes)
	type fault struct {
		Line   int64
		Column string
		Reason string
	}
	var got []fault
	for _, d := range c.dead {
		got = append(got, fault{d.Line, d.Column, d.Reason})
	}
	want := []fault{
		{4, "absent_half_days", `expected int32, got "abc"`},
		{6, "", "expected 6 fields, got 5"},
		{10, "half_days", `expected int32, got "35.5"`},
		{11, "", "expected 6 fields, got 7"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dead letters %+v\nwant %+v", got, want)
	}
	if c.rows != 8 {
		t.Errorf("rows = %d, want 8", c.rows)
	}
}
