package pronote_test

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/vigie-edu/vigie/connectors/pronote"
)

// records counts the records of data after its header line, as the source
// splits them, and how many of them are blank.
func records(t *testing.T, data []byte) (n, blank int) {
	t.Helper()
	var in io.Reader = bytes.NewReader(data)
	if !bytes.HasPrefix(data, []byte("\ufeff")) {
		in = charmap.Windows1252.NewDecoder().Reader(in)
	}
	r := csv.NewReader(in)
	r.Comma, r.FieldsPerRecord, r.LazyQuotes = ';', -1, true
	for i := 0; ; i++ {
		rec, err := r.Read()
		if err == io.EOF {
			return n - 1, blank
		}
		n++
		if err == nil && strings.TrimSpace(strings.Join(rec, "")) == "" && i > 0 {
			blank++
		}
	}
}

// FuzzRead feeds arbitrary exports to both kinds: the source must not
// panic, and every record after the header must give rows or a dead letter.
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
			n, blank := records(t, data)
			if kind == "notes" && len(c.rows)+len(c.dead) != n-blank {
				t.Fatalf("notes: %d records (%d blank), %d rows + %d dead letters", n, blank, len(c.rows), len(c.dead))
			}
			if kind == "absences" && (len(c.rows)+len(c.dead) < n-blank || len(c.rows)+len(c.dead) > 2*(n-blank)) {
				t.Fatalf("absences: %d records (%d blank), %d rows + %d dead letters", n, blank, len(c.rows), len(c.dead))
			}
			// And the file alone, header or not: an error, never a panic.
			os.WriteFile(path, body, 0o644)
			read(t, map[string]any{"path": path, "kind": kind, "encoding": "utf-8"})
		}
		_ = pronote.Name
	})
}
