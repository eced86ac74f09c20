package csv

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// writeBytes writes content to name in dir and returns its path.
func writeBytes(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func cp1252(t *testing.T, s string) []byte {
	t.Helper()
	b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func utf16le(t *testing.T, s string) []byte {
	t.Helper()
	b, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrenchFormats(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		opts    map[string]any
		schema  string
		rows    [][]string
	}{
		{"semicolon detected, decimal comma inferred",
			[]byte("Nom;Moyenne;Absences\nDupont;12,5;3\nMartin;9;0\n"), nil,
			"Nom:utf8 Moyenne:float64 Absences:int64", [][]string{{"Dupont", "12.5", "3"}, {"Martin", "9", "0"}}},
		{"decimal comma not inferred with a decimal point in the sample",
			[]byte("a;b\n12,5;1.5\n"), nil, "a:utf8 b:float64", [][]string{{"12,5", "1.5"}}},
		{"decimal comma declared",
			[]byte("a;b\n12,5;3\n"), map[string]any{"decimal": ",", "columns": map[string]any{"b": "float64"}},
			"a:float64 b:float64", [][]string{{"12.5", "3"}}},
		{"comma file keeps a point", []byte("a,b\n\"12,5\",1.5\n"), nil, "a:utf8 b:float64", [][]string{{"12,5", "1.5"}}},
		{"tab detected", []byte("a\tb\n1\tx y\n"), nil, "a:int64 b:utf8", [][]string{{"1", "x y"}}},
		{"pipe detected", []byte("a|b|c\n1|2|3\n"), nil, "a:int64 b:int64 c:int64", [][]string{{"1", "2", "3"}}},
		{"quoted semicolons do not fool detection", []byte("a,b\n\"x;y;z\",1\n\"p;q\",2\n"), nil,
			"a:utf8 b:int64", [][]string{{"x;y;z", "1"}, {"p;q", "2"}}},
		{"one column", []byte("a\n1\n2\n"), nil, "a:int64", [][]string{{"1"}, {"2"}}},
		{"windows-1252 detected", cp1252(t, "Nom;Prénom\nLœuvre;Zoé\n"), nil,
			"Nom:utf8 Prénom:utf8", [][]string{{"Lœuvre", "Zoé"}}},
		{"iso-8859-1 declared", []byte("Nom;Pr\xe9nom\nA;\xe9\xe8\n"), map[string]any{"encoding": "iso-8859-1"},
			"Nom:utf8 Prénom:utf8", [][]string{{"A", "éè"}}},
		{"utf-8 BOM", []byte("\ufeffNom;Prénom\nA;Zoé\n"), nil, "Nom:utf8 Prénom:utf8", [][]string{{"A", "Zoé"}}},
		{"utf-16 with BOM (Excel 'Unicode text')", utf16le(t, "Nom\tNote\nZoé\t12,5\n"), nil,
			"Nom:utf8 Note:float64", [][]string{{"Zoé", "12.5"}}},
		{"gzip", gzipped(t, "a;b\n1;x\n"), nil, "a:int64 b:utf8", [][]string{{"1", "x"}}},
		{"dd/mm/yyyy", []byte("d;n\n01/09/2025;1\n3/1/2026;2\n"), map[string]any{"date_format": "dd/mm/yyyy"},
			"d:date32 n:int64", [][]string{{"2025-09-01", "1"}, {"2026-01-03", "2"}}},
		{"strftime date", []byte("d\n30/09/2025\n"), map[string]any{"date_format": "%d/%m/%Y"},
			"d:date32", [][]string{{"2025-09-30"}}},
		{"Go layout date", []byte("d\n30.09.2025\n"), map[string]any{"date_format": "02.01.2006"},
			"d:date32", [][]string{{"2025-09-30"}}},
		{"dates not ISO stay text by default", []byte("d\n01/09/2025\n"), nil, "d:utf8", [][]string{{"01/09/2025"}}},
		{"timestamp format and zone", []byte("t;n\n01/09/2025 08:30:00;1\n15/01/2026 08:30:00;2\n"),
			map[string]any{"timestamp_format": "dd/mm/yyyy HH:mm:ss", "timezone": "Europe/Paris"},
			"t:timestamp[us, tz=UTC] n:int64", [][]string{{"2025-09-01T06:30:00Z", "1"}, {"2026-01-15T07:30:00Z", "2"}}},
		{"ISO timestamp in a zone", []byte("t\n2025-09-01 08:30:00\n"),
			map[string]any{"columns": map[string]any{"t": "timestamp_us"}, "timezone": "Europe/Paris"},
			"t:timestamp[us, tz=UTC]", [][]string{{"2025-09-01T06:30:00Z"}}},
		{"rename, declared by new or old name", []byte("Nom;Note;Absences\nA;12;3\n"),
			map[string]any{"rename": map[string]any{"Nom": "last_name", "Note": "mark"},
				"columns": map[string]any{"mark": "float64", "Nom": "utf8"}},
			"last_name:utf8 mark:float64 Absences:int64", [][]string{{"A", "12", "3"}}},
		{"lazy quotes", []byte("a;b\n5\"3;x\n"), map[string]any{"lazy_quotes": true}, "a:utf8 b:utf8", [][]string{{"5\"3", "x"}}},
		{"declared bools", []byte("a;b;c\n1;oui;yes\n0;NON;false\n"),
			map[string]any{"columns": map[string]any{"a": "bool", "b": "bool", "c": "bool"}},
			"a:bool b:bool c:bool", [][]string{{"true", "true", "true"}, {"false", "false", "false"}}},
		{"0/1 inferred as integers, not bools", []byte("a\n1\n0\n"), nil, "a:int64", [][]string{{"1"}, {"0"}}},
		{"null markers", []byte("a;b\n?;1\n2;?\n"), map[string]any{"null_values": []any{"?"}},
			"a:int64 b:int64", [][]string{{"∅", "1"}, {"2", "∅"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(writeBytes(t, t.TempDir(), "in.csv", tt.content), 0, tt.opts)
			if got := schemaString(t, cfg); got != tt.schema {
				t.Errorf("schema = %s, want %s", got, tt.schema)
			}
			c, err := read(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.rows, tt.rows) || len(c.dead) != 0 {
				t.Errorf("rows = %q (dead letters %v), want %q", c.rows, c.dead, tt.rows)
			}
		})
	}
}

func TestFormatErrors(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		want string
	}{
		{"bad date format", map[string]any{"date_format": "dd/mm"}, `option "date_format": "dd/mm" is not a usable format: expected a day, a month and a year`},
		{"bad timestamp format", map[string]any{"timestamp_format": "dd/mm/yyyy"}, `option "timestamp_format": "dd/mm/yyyy" is not a usable format`},
		{"bad zone", map[string]any{"timezone": "Europe/Pariss"}, `"Europe/Pariss" is not a time zone`},
		{"bad encoding", map[string]any{"encoding": "latin1"}, `"latin1" is not one of`},
		{"bad decimal", map[string]any{"decimal": ";"}, `";" is not one of`},
		{"rename of a missing column", map[string]any{"rename": map[string]any{"Nmo": "x"}}, `header has no column "Nmo" to rename (did you mean "Nom"?)`},
		{"rename to a duplicate", map[string]any{"rename": map[string]any{"Nom": "Note"}}, `column "Note" appears twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Source{}.Schema(context.Background(), config(writeFile(t, "Nom;Note\nA;1\n"), 0, tt.opts))
			if !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want a configuration error containing %q", err, tt.want)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	dir := t.TempDir()
	writeBytes(t, dir, "exports/2025/a.csv", []byte("id;nom;note\n1;Ana;12,5\n2;Bob;x\n"))
	// Another order of the columns, another encoding, gzipped.
	b := writeBytes(t, dir, "exports/2026/b.csv.gz", gzipped(t, string(cp1252(t, "note;id;nom\n9;3;Zoé\n10;4\n"))))
	writeBytes(t, dir, "exports/2026/empty.csv", nil)
	writeBytes(t, dir, "exports/notes.txt", []byte("not csv"))
	cfg := config(filepath.Join(dir, "exports/**/*.csv*"), 0, map[string]any{"columns": map[string]any{"note": "float64"}})
	if got, want := schemaString(t, cfg), "id:int64 nom:utf8 note:float64"; got != want {
		t.Fatalf("schema = %s, want %s", got, want)
	}
	c, err := read(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"1", "Ana", "12.5"}, {"3", "Zoé", "9"}}; !reflect.DeepEqual(c.rows, want) {
		t.Errorf("rows = %q, want %q", c.rows, want)
	}
	a := filepath.Join(dir, "exports/2025/a.csv")
	want := []protocol.DeadLetter{
		{Origin: a, Line: 3, Column: "note", Reason: `expected float64, got "x"`, Raw: "2;Bob;x"},
		{Origin: b, Line: 3, Reason: "expected 3 fields, got 2", Raw: "10;4"},
	}
	if !reflect.DeepEqual(c.dead, want) {
		t.Errorf("dead letters:\n%+v\nwant\n%+v", c.dead, want)
	}

	t.Run("fail names the file", func(t *testing.T) {
		_, err := read(t, config(filepath.Join(dir, "exports/2026/*.gz"), 0, map[string]any{"on_error": "fail"}))
		if err == nil || !strings.Contains(err.Error(), b+":3: expected 3 fields, got 2") {
			t.Errorf("error = %v, want it to name %s:3", err, b)
		}
	})
	t.Run("no match", func(t *testing.T) {
		_, err := Source{}.Schema(context.Background(), config(filepath.Join(dir, "*.xlsx"), 0, nil))
		if !errors.Is(err, protocol.ErrNotFound) || !strings.Contains(err.Error(), "no file matches") {
			t.Errorf("error = %v, want ErrNotFound: no file matches", err)
		}
	})
	t.Run("header mismatch", func(t *testing.T) {
		writeBytes(t, dir, "bad/a.csv", []byte("id;nom\n1;x\n"))
		c := writeBytes(t, dir, "bad/c.csv", []byte("id;name\n1;x\n"))
		_, err := Source{}.Schema(context.Background(), config(filepath.Join(dir, "bad/*.csv"), 0, nil))
		if !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), c+":1: header does not match") {
			t.Errorf("error = %v, want a header mismatch naming %s", err, c)
		}
	})
	t.Run("folder", func(t *testing.T) {
		_, err := Source{}.Schema(context.Background(), config(filepath.Join(dir, "exports"), 0, nil))
		if !errors.Is(err, protocol.ErrConfig) || !strings.Contains(err.Error(), "is a folder") {
			t.Errorf("error = %v, want: is a folder", err)
		}
	})
}

func TestInvalidUTF8DeadLettered(t *testing.T) {
	path := writeBytes(t, t.TempDir(), "in.csv", []byte("a;b\n1;ok\n2;caf\xe9\n"))
	c, err := read(t, config(path, 0, map[string]any{"encoding": "utf-8"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.rows) != 1 || len(c.dead) != 1 || c.dead[0].Line != 3 || c.dead[0].Column != "b" ||
		!strings.Contains(c.dead[0].Reason, "invalid UTF-8") {
		t.Errorf("rows %q, dead letters %+v: want 1 row and a dead letter for line 3 column b", c.rows, c.dead)
	}
}

// TestGlobConformance runs the conformance suite over several files in
// several encodings, one gzipped: resuming from every position must land
// in the right file at the right record.
func TestGlobConformance(t *testing.T) {
	dir := t.TempDir()
	writeBytes(t, dir, "in/1.csv", []byte("\ufeffid;name;mark\n1;Ana;12,5\n2;\"Bob\nJr\";NA\nx;bad;1\n"))
	writeBytes(t, dir, "in/2.csv", cp1252(t, "id;name;mark\n3;Chloé;9\n4;Dan;10\n"))
	writeBytes(t, dir, "in/3.csv.gz", gzipped(t, "mark;id;name\n11;5;Eve\n14;6;Fay\n15;7;Gus\n"))
	c := conformance.SourceCase{
		Options: map[string]any{"path": filepath.Join(dir, "in/*"), "columns": map[string]any{"id": "int64"}},
		WantRows: []string{"1|Ana|12.5", "2|Bob\nJr|(null)", "3|Chloé|9", "4|Dan|10", "5|Eve|11",
			"6|Fay|14", "7|Gus|15"},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSource(t, Source{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSource(t, conformance.ThroughPlugin(t, Source{}).(protocol.Source), c)
	})
}
