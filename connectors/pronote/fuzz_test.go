package pronote_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/vigie-edu/vigie/connectors/internal/linecount"
	"github.com/vigie-edu/vigie/connectors/pronote"
)

// FuzzRead feeds arbitrary exports to both kinds: the source must not
// panic, dead letters carry their lines' text, and rows and dead letters
// never claim more lines than the file has (TestLineAccounting checks the
// exact count on generated files).
func FuzzRead(f *testing.F) {
	for _, p := range []string{"testdata/notes_variants.csv", "testdata/absences_variants.csv", "testdata/notes_more.csv"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		_, body, _ := bytes.Cut(b, []byte("\n"))
		f.Add(body)
	}
	f.Add([]byte("S1;N;P;C;M;T1;01/01/2025;\"12,5\";20;1\r\n\"unterminated;x\n"))
	f.Add([]byte("S1;N;P;C;01/01/2025;Journée;Oui;Maladie;01/01/2025 à 08h00\n"))
	headers := map[string]string{
		"notes":    "Identifiant;Nom;Prénom;Classe;Matière;Période;Date;Note;Barème;Coefficient\r\n",
		"absences": "Identifiant;Nom;Prénom;Classe;Date;Demi-journée;Justifiée;Motif;Saisie le\r\n",
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		for kind, h := range headers {
			hb, _ := charmap.Windows1252.NewEncoder().Bytes([]byte(h))
			data := append(hb, body...)
			path := filepath.Join(dir, kind+".csv")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := read(t, map[string]any{"path": path, "kind": kind})
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			lines := linecount.Lines(data)
			if err := linecount.CheckSpans(c.dead, lines); err != nil {
				t.Fatal(err)
			}
			// A record gives one row of notes, one or two of absences (a
			// whole day is two half-days), and takes one line or more.
			records := len(c.rows)
			if kind == "absences" {
				records = (len(c.rows) + 1) / 2
			}
			if used := 1 + records + linecount.DeadLines(c.dead); used > lines {
				t.Fatalf("%s: %d rows + %d dead-lettered lines + header = %d > %d lines", kind, len(c.rows), linecount.DeadLines(c.dead), used, lines)
			}
			// And the file alone, header or not: an error, never a panic.
			os.WriteFile(path, body, 0o644)
			read(t, map[string]any{"path": path, "kind": kind, "encoding": "utf-8"})
		}
		_ = pronote.Name
	})
}

// TestLineAccounting reads generated notes exports (good rows, quotes that
// never close or close lines later, quoted line breaks, empty lines, wrong
// field counts, bad marks): every line is the header, a row (1 + the line
// breaks in its values), a dead letter (with its text) or empty.
func TestLineAccounting(t *testing.T) {
	const good = "S%d;Durand;Zoe;3eB;MATHS;Trimestre 1;05/10/2025;12,5;20;1\r\n"
	pieces := []string{
		"S%d;\"Durand;Zoe;3eB;MATHS;Trimestre 1;05/10/2025;12,5;20;1\r\n",
		"S%d;\"Du\nrand\";Zoe;3eB;MATHS;Trimestre 1;05/10/2025;12,5;20;1\r\n",
		"S%d;Dur\"and;Zoe;3eB;MATHS;Trimestre 1;05/10/2025;12,5;20;1\r\n",
		"\r\n",
		"S%d;Durand\r\n",
		"S%d;Durand;Zoe;3eB;MATHS;Trimestre 1;05/10/2025;douze;20;1\r\n",
		"S%d;\"Durand\n;Zoe\";3eB;MATHS;Trimestre 1;05/10/2025;12,5;20;1;x;y\r\n",
	}
	r := rand.New(rand.NewPCG(12, 5))
	dir := t.TempDir()
	for k := range 100 {
		data, blank := linecount.Compose(r, "Identifiant;Nom;Prenom;Classe;Matiere;Periode;Date;Note;Bareme;Coefficient\r\n", good, pieces)
		data = "\ufeff" + data
		path := filepath.Join(dir, fmt.Sprintf("%d.csv", k))
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			c, err := read(t, map[string]any{"path": path, "kind": "notes"})
			if err != nil {
				t.Fatal(err)
			}
			if err := linecount.CheckRecords([]byte(data), c.rows, c.dead, blank); err != nil {
				t.Fatalf("%v\n%v\n%q\n%q", err, c.dead, data, c.rows)
			}
		})
	}
}
