package csv

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCSVSource reads any bytes as a CSV file under various options: the
// source must not panic, and once the file's header is accepted every
// physical line must end in exactly one of a row, a dead letter or the
// header (see checkLines).
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
		if _, err := newPlan(context.Background(), cfg); err != nil {
			return // no usable header: an error for the whole file, not rows
		}
		checkLines(t, cfg)
	})
}
