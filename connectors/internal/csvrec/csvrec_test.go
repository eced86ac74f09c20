package csvrec

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// FuzzReader reads any text, strict and lazy, with small and default line
// limits: the records must tile the input, each starting on the line after
// the one before, their raw texts adding up to the input byte for byte, and
// InputOffset and Line must follow.
//
//	go test ./connectors/internal/csvrec -run '^$' -fuzz FuzzReader -fuzztime 1m
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n", "1,\"x\n2,y\n3,\"z\"\n", "\"a\"\"b\",c\r\n\n\"open\n", "x\"y,\"a\"b\",c\n\"q\nr\"\"s\"\n",
		"1,\"a\nb\nc\nd\ne\",2\n", "\"\r\n\"\r", "a;b\n\"c;d\"\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, opts uint8) {
		comma := []rune{',', ';', '\t', '€'}[opts&3]
		r := NewReader(bytes.NewReader(data), comma, opts&4 != 0, int(opts>>3&3), "max_record_lines")
		var got []byte
		line := 1
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Line != line || rec.Lines < 1 || len(rec.Raw) == 0 {
				t.Fatalf("record at line %d over %d lines (%q), want line %d", rec.Line, rec.Lines, rec.Raw, line)
			}
			if rec.Malformed != "" && rec.Lines != 1 {
				t.Fatalf("malformed record over %d lines: %q", rec.Lines, rec.Raw)
			}
			if rec.Malformed == "" && len(rec.Fields) == 0 {
				t.Fatalf("record without fields: %q", rec.Raw)
			}
			if n := bytes.Count(rec.Raw[:len(rec.Raw)-1], []byte{'\n'}) + 1; n != rec.Lines {
				t.Fatalf("record says %d lines, its text has %d: %q", rec.Lines, n, rec.Raw)
			}
			if rec.Lines > 1 && opts&1 == 0 {
				r.Cut() // as a reader does on a wrong field count
				if rec.Lines != 1 {
					t.Fatal("Cut left more than one line")
				}
			}
			got = append(got, rec.Raw...)
			line += rec.Lines
			if r.Line() != line-1 || r.InputOffset() != int64(len(got)) {
				t.Fatalf("Line %d, InputOffset %d; want %d, %d", r.Line(), r.InputOffset(), line-1, len(got))
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("records put together give %q, want %q", got, data)
		}
	})
}

// TestUnquotedLines: lines without quotes (split without the quote
// machinery) give encoding/csv's fields and FieldPos columns, with fields
// copied or aliased.
func TestUnquotedLines(t *testing.T) {
	inputs := []struct {
		name  string
		comma rune
		text  string
	}{
		{"comma", ',', "a,b,c\n1,,3\r\n\n,\nlast,line"},
		{"semicolon", ';', "x;y\né;ü;ß\n"},
		{"euro sign", '€', "a€b€€c\n1€2\n"},
		{"tab", '\t', "a\tb\n\t\n"},
	}
	for _, in := range inputs {
		for _, alias := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/alias=%v", in.name, alias), func(t *testing.T) {
				want := csv.NewReader(strings.NewReader(in.text))
				want.Comma, want.FieldsPerRecord = in.comma, -1
				r := NewReader(strings.NewReader(in.text), in.comma, false, 0, "")
				if alias {
					r.AliasFields()
				}
				var kept [][]string
				for {
					rec, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(Content(rec.Raw)) == 0 {
						continue // encoding/csv skips empty lines
					}
					fields, err := want.Read()
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(rec.Fields, fields) {
						t.Fatalf("line %d: fields %q, want %q", rec.Line, rec.Fields, fields)
					}
					for i := range fields {
						wl, wc := want.FieldPos(i)
						if l, c := rec.FieldPos(i); l != wl || c != wc {
							t.Errorf("line %d field %d at %d:%d, want %d:%d", rec.Line, i, l, c, wl, wc)
						}
					}
					kept = append(kept, slices.Clone(rec.Fields))
				}
				if len(kept) == 0 {
					t.Fatal("no records")
				}
			})
		}
	}
}

// TestNextPlain: plain lines come whole with their line ends and count as
// read; a line with a quote is left to Next, which reads the record from
// it (over several lines if need be); an unread line is read again by
// Next; lines and offsets stay those of Next alone.
func TestNextPlain(t *testing.T) {
	text := "a,b\r\n\"x\ny\",2\nc,d\ne,f"
	r := NewReader(strings.NewReader(text), ',', false, 0, "")
	expect := func(wantLine string, wantOK bool, line, off int) []byte {
		t.Helper()
		got, ok, err := r.NextPlain()
		if err != nil || ok != wantOK || string(got) != wantLine {
			t.Fatalf("NextPlain = %q, %v, %v; want %q, %v", got, ok, err, wantLine, wantOK)
		}
		if r.Line() != line || r.InputOffset() != int64(off) {
			t.Fatalf("after %q: line %d offset %d, want %d and %d", got, r.Line(), r.InputOffset(), line, off)
		}
		return got
	}
	expect("a,b\r\n", true, 1, 5)
	expect("", false, 1, 5) // a quote: for Next
	rec, err := r.Next()
	if err != nil || len(rec.Fields) != 2 || rec.Fields[0] != "x\ny" || rec.Line != 2 || rec.Lines != 2 {
		t.Fatalf("Next = %+v, %v; want the record over lines 2-3", rec, err)
	}
	line := expect("c,d\n", true, 4, 17)
	r.Unread(line)
	if r.Line() != 3 || r.InputOffset() != 13 {
		t.Fatalf("after Unread: line %d offset %d, want 3 and 13", r.Line(), r.InputOffset())
	}
	expect("", false, 3, 13) // the unread line is Next's
	if rec, err := r.Next(); err != nil || strings.Join(rec.Fields, "|") != "c|d" || rec.Line != 4 {
		t.Fatalf("Next after Unread = %+v, %v", rec, err)
	}
	expect("e,f", true, 5, len(text))
	if _, _, err := r.NextPlain(); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}
