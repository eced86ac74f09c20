package pronote_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/vigie-edu/vigie/connectors/pronote"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// lineCount returns the physical lines of data.
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
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
// lines, past the header line, and that their line ranges do not overlap
// or pass the end of the file.
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
			lines := lineCount(data)
			checkDead(t, c.dead, lines)
			// A record gives one row of notes, one or two of absences (a
			// whole day is two half-days), and takes one line or more.
			records := len(c.rows)
			if kind == "absences" {
				records = (len(c.rows) + 1) / 2
			}
			if used := 1 + records + deadLines(c.dead); used > lines {
				t.Fatalf("%s: %d rows + %d dead-lettered lines + header = %d > %d lines", kind, len(c.rows), deadLines(c.dead), used, lines)
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
		var b strings.Builder
		b.WriteString("Identifiant;Nom;Prenom;Classe;Matiere;Periode;Date;Note;Bareme;Coefficient\r\n")
		empty := 0
		for i := range r.IntN(60) {
			p := good
			if r.IntN(3) == 0 {
				p = pieces[r.IntN(len(pieces))]
			}
			if p == "\r\n" {
				empty++
				b.WriteString(p)
				continue
			}
			fmt.Fprintf(&b, p, i)
		}
		data := "\ufeff" + b.String()
		path := filepath.Join(dir, fmt.Sprintf("%d.csv", k))
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			c, err := read(t, map[string]any{"path": path, "kind": "notes"})
			if err != nil {
				t.Fatal(err)
			}
			lines := lineCount([]byte(data))
			checkDead(t, c.dead, lines)
			rows := 0
			for _, row := range c.rows {
				rows += 1 + strings.Count(row, "\n")
			}
			if got := 1 + rows + deadLines(c.dead) + empty; got != lines {
				t.Errorf("%d lines in, 1 header + %d in rows + %d dead-lettered + %d empty = %d\n%v",
					lines, rows, deadLines(c.dead), empty, got, c.dead)
				t.Logf("%q\n%q", data, c.rows)
			}
		})
	}
}
