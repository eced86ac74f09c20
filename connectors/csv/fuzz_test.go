package csv

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzCSVSource reads any bytes as a CSV file under various options: the
// source must not panic, and once the file's header is accepted every data
// record must end either in a batch or in a dead letter, counted against an
// independent count of the records.
func FuzzCSVSource(f *testing.F) {
	for _, seed := range []string{
		"a,b\n1,2\n3,x\n",
		"Nom;Note;Date\nZoé;12,5;01/09/2025\nA;;32/13/2025\nB;1\n",
		"\ufeffa\tb\n\"q\"\"uote\"\t2\n\"open\n",
		"a|b\n1|2|3\n\n\n4|5\n",
		"Nom;Pr\xe9nom\nA;\xe9\n",
		"x\n\"a\"b\"\n2025-09-01T08:00:00Z\n",
		"a,a\n1,2\n",
		"",
	} {
		for opts := range 8 {
			f.Add([]byte(seed), uint8(opts))
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, opts uint8) {
		content := data
		if opts&0x80 != 0 {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Write(data)
			w.Close()
			content = b.Bytes()
		}
		path := filepath.Join(dir, "fuzz.csv")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		o := map[string]any{
			"header":      opts&1 == 0,
			"lazy_quotes": opts&2 != 0,
			"encoding":    []string{"auto", "utf-8", "windows-1252", "utf-16"}[opts>>2&3],
			"infer_rows":  int64(opts>>4&3) * 3,
		}
		if opts&0x40 != 0 {
			o["delimiter"] = ";"
			o["decimal"] = ","
			o["date_format"] = "dd/mm/yyyy"
			o["timestamp_format"] = "dd/mm/yyyy HH:mm:ss"
			o["timezone"] = "Europe/Paris"
			o["null_values"] = []any{"", "?"}
		}
		cfg := config(path, 3, o)
		p, err := newPlan(context.Background(), cfg)
		if err != nil {
			return // no usable header: an error for the whole file, not rows
		}
		want := countRecords(t, p)

		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		c := &collector{}
		if err := (Source{}).Read(context.Background(), cfg, mem, c); err != nil {
			t.Fatalf("read: %v", err)
		}
		if got := len(c.rows) + len(c.dead); got != want {
			t.Fatalf("%d rows + %d dead letters = %d, want %d records", len(c.rows), len(c.dead), got, want)
		}
		for _, d := range c.dead {
			if d.Origin != path || d.Line < 1 || d.Reason == "" {
				t.Fatalf("dead letter without file, line or reason: %+v", d)
			}
		}
	})
}

// countRecords counts the data records of the plan's file with a plain
// encoding/csv reader over the decoded text: records and malformed records
// alike, less the header.
func countRecords(t *testing.T, p *plan) int {
	t.Helper()
	in, err := openInput(p.files[0], p.encoding)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r := p.reader(in)
	n := 0
	for {
		_, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil && !isParseError(err) {
			t.Fatalf("count: %v", err)
		}
		n++
	}
	if p.header && n > 0 {
		n--
	}
	return n
}
