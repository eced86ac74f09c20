package jsonl_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/connectors/internal/linecount"
)

// TestLineAccounting reads generated files (good and bad objects, JSON
// that is not an object, broken JSON, blank lines, CRLF, no final line
// end) and checks that every line is a row, a dead letter with its line
// and text, or blank.
func TestLineAccounting(t *testing.T) {
	pieces := []func(i int) string{
		func(i int) string {
			return fmt.Sprintf(`{"id": %d, "student": {"id": "S%d"}, "score": %d.5}`, i, i, i%20)
		},
		func(i int) string { return fmt.Sprintf(`{"id": %d, "student": {"id": "S%d"`, i, i) },
		func(i int) string { return fmt.Sprintf(`{"id": "x%d"}`, i) },
		func(i int) string { return "[1, 2]" },
		func(i int) string { return "   " },
		func(i int) string { return "" },
		func(i int) string { return fmt.Sprintf(`{"id": %d, "day": "05/01/2026"}`, i) },
		func(i int) string { return "\"unterminated" },
	}
	r := rand.New(rand.NewPCG(12, 2))
	dir := t.TempDir()
	for k := range 200 {
		var b strings.Builder
		for i := range r.IntN(80) {
			p := pieces[0]
			if r.IntN(3) == 0 {
				p = pieces[r.IntN(len(pieces))]
			}
			b.WriteString(p(i))
			if r.IntN(5) == 0 {
				b.WriteString("\r")
			}
			b.WriteString("\n")
		}
		data := b.String()
		if r.IntN(3) == 0 {
			data = strings.TrimSuffix(data, "\n")
		}
		path := filepath.Join(dir, fmt.Sprintf("%d.jsonl", k))
		writeFile(t, path, data, r.IntN(4) == 0)
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			c, err := read(t, map[string]any{"path": path, "columns": eventColumns, "order": eventOrder})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := linecount.Check([]byte(data), int64(len(c.rows)), c.dead); err != nil {
				t.Fatal(err)
			}
		})
	}
}
