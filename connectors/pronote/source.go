// Package pronote holds the "pronote" source: it reads the CSV exports of
// marks and half-day absences that French school-management software such
// as Pronote produces (Windows-1252, ";", French headers, decimal commas,
// dd/mm/yyyy dates, codes such as "Abs" or "Disp" instead of marks) into
// typed Arrow batches with stable English column names. There is no public
// specification of these exports: README.md lists what is assumed.
package pronote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/vigie-edu/vigie/connectors/sdk"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris on machines without a zone database
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/text/encoding/charmap"

	"github.com/vigie-edu/vigie/connectors/internal/csvrec"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Name is the registry name of the source.
const Name = "pronote"

// Kinds of export.
const (
	KindNotes    = "notes"
	KindAbsences = "absences"
)

// on_error policies.
const (
	onErrorDeadLetter = "dead_letter"
	onErrorSkip       = "skip"
	onErrorFail       = "fail"
)

// Option names.
const (
	optPath      = "path"
	optKind      = "kind"
	optEncoding  = "encoding"
	optDelimiter = "delimiter"
	optScale     = "scale"
	optTimezone  = "timezone"
	optHeaders   = "headers"
	optOnError   = "on_error"
)

// headerSearch is how many records are searched for the header line.
const headerSearch = 10

// Source is the "pronote" source. It is stateless and safe for concurrent
// use.
type Source struct{}

var _ protocol.Source = Source{}

var spec = protocol.Spec{
	Name:    Name,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "pronote" (source): reads Pronote-style CSV exports of marks
(kind = "notes") or half-day absences (kind = "absences"), one file or a glob
of files read in name order, into typed Arrow batches with English column
names. French headers are recognised in their usual variants (accents, case
and punctuation ignored; "headers" adds more), and the header line may
follow a few title lines. Numbers take a decimal comma; dates are
dd/mm/yyyy (or d/m/yy, yyyy-mm-dd). Marks: "Abs", "Disp", "N.Not", "Inap",
"NR" and their variants give a null mark and a mark_status (absent, exempt,
not_graded, unfit, not_submitted; "missing" for an empty cell, "ok"
otherwise); marks on another scale (Barème 10 or 40, or "15/40" in the
cell) are normalised to "scale" (/20) in mark, the original in raw_mark and
scale. Absences: one row per half-day (AM/PM; "Journée" gives two),
justified from Oui/Non (or "Non justifié" in the reason), recorded_at in
"timezone" converted to UTC. A row with the wrong field count, an
unreadable mark, date or flag goes, per on_error, to the dead-letter output
with file, line, column, reason and the record's text, is skipped, or
fails the read. Records are split by lines: a quote that never closes (or
a field over several lines with a stray quote, or over 1000 lines) makes
its line alone a dead letter and reading resumes on the next. Empty lines
are passed over. See connectors/pronote/README.md for the assumed layout.`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true, Doc: "export file, or a glob of files (read in name order)"},
		{Name: optKind, Type: protocol.TypeString, Required: true, Enum: []string{KindNotes, KindAbsences},
			Doc: "what the files hold: marks (notes) or half-day absences (absences)"},
		{Name: optEncoding, Type: protocol.TypeString, Default: "windows-1252",
			Enum: []string{"windows-1252", "iso-8859-1", "iso-8859-15", "utf-8"},
			Doc:  "text encoding of the files; a file that starts with a UTF-8 byte order mark is read as UTF-8 whatever this says"},
		{Name: optDelimiter, Type: protocol.TypeString, Default: ";", Doc: `field separator, one character ("\t" for a tab)`},
		{Name: optScale, Type: protocol.TypeFloat, Default: 20.0,
			Doc: "the scale marks are normalised to in the mark column; also the scale of marks written without one"},
		{Name: optTimezone, Type: protocol.TypeString, Default: "Europe/Paris",
			Doc: "zone of the times in the exports (recorded_at), converted to UTC"},
		{Name: optHeaders, Type: protocol.TypeStringMap,
			Doc: `more header names: header as written -> output column (e.g. {"Élève" = "last_name"})`},
		{Name: optOnError, Type: protocol.TypeString, Default: onErrorDeadLetter,
			Enum: []string{onErrorDeadLetter, onErrorSkip, onErrorFail},
			Doc:  "what to do with a bad row: send it to the dead-letter output, skip it, or fail the read"},
	},
}

// Spec describes the source and its options.
func (Source) Spec() protocol.Spec { return spec }

// role is an input column: the output column it feeds and the folded
// header names it is recognised by.
type role struct {
	key      string
	aliases  []string
	required bool
}

var personRoles = []role{
	{key: "student_id", required: true, aliases: []string{"identifiant", "id", "identifiant eleve", "id eleve",
		"ine", "numero national", "n national", "numero", "no eleve", "numero eleve", "student id"}},
	{key: "last_name", aliases: []string{"nom", "nom eleve", "nom de famille", "last name"}},
	{key: "first_name", aliases: []string{"prenom", "prenom eleve", "prenoms", "first name"}},
	{key: "class", aliases: []string{"classe", "division", "classe eleve", "class"}},
}

var notesRoles = append(slices.Clone(personRoles),
	role{key: "subject", aliases: []string{"matiere", "discipline", "service", "enseignement", "subject"}},
	role{key: "period", aliases: []string{"periode", "trimestre", "semestre", "period"}},
	role{key: "date", aliases: []string{"date", "date du devoir", "date devoir", "date de l evaluation", "date evaluation"}},
	role{key: "note", required: true, aliases: []string{"note", "valeur", "note eleve", "resultat", "mark"}},
	role{key: "bareme", aliases: []string{"bareme", "note sur", "sur", "bareme de la note", "scale"}},
	role{key: "coefficient", aliases: []string{"coefficient", "coef", "coeff"}},
	role{key: "comment", aliases: []string{"commentaire", "appreciation", "remarque", "comment"}},
)

var absencesRoles = append(slices.Clone(personRoles),
	role{key: "date", required: true, aliases: []string{"date", "date de l absence", "jour", "le"}},
	role{key: "half", required: true, aliases: []string{"demi journee", "creneau", "moment", "half"}},
	role{key: "justified", aliases: []string{"justifiee", "justifie", "justification", "justified"}},
	role{key: "reason", aliases: []string{"motif", "motif de l absence", "raison", "reason"}},
	role{key: "recorded_at", aliases: []string{"saisie le", "date de saisie", "saisi le", "saisie", "recorded at"}},
)

// headerDoc is how a role's usual French header is named in messages.
var headerDoc = map[string]string{
	"student_id": "Identifiant", "note": "Note", "date": "Date", "half": "Demi-journée",
}

var (
	utf8Type = arrow.BinaryTypes.String
	tsUTC    = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
)

func fields(names []string, types ...arrow.DataType) []arrow.Field {
	out := make([]arrow.Field, len(names))
	for i, n := range names {
		out[i] = arrow.Field{Name: n, Type: types[i], Nullable: true}
	}
	return out
}

// NotesSchema is the schema of kind = "notes".
var NotesSchema = arrow.NewSchema(fields(
	[]string{"student_id", "last_name", "first_name", "class", "subject", "period", "date",
		"mark", "mark_status", "raw_mark", "scale", "coefficient", "comment"},
	utf8Type, utf8Type, utf8Type, utf8Type, utf8Type, utf8Type, arrow.FixedWidthTypes.Date32,
	arrow.PrimitiveTypes.Float64, utf8Type, arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Float64,
	arrow.PrimitiveTypes.Float64, utf8Type), nil)

// AbsencesSchema is the schema of kind = "absences".
var AbsencesSchema = arrow.NewSchema(fields(
	[]string{"student_id", "last_name", "first_name", "class", "date", "half", "justified", "reason", "recorded_at"},
	utf8Type, utf8Type, utf8Type, utf8Type, arrow.FixedWidthTypes.Date32, utf8Type,
	arrow.FixedWidthTypes.Boolean, utf8Type, tsUTC), nil)

// plan is a checked configuration.
type plan struct {
	files     []string
	kind      string
	encoding  string
	comma     rune
	scale     float64
	loc       *time.Location
	headers   map[string]string // folded header -> role key
	onError   string
	batchRows int
	roles     []role
	schema    *arrow.Schema
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("connector %q: "+format+": %w", append([]any{Name}, append(args, protocol.ErrConfig)...)...)
}

func newPlan(cfg protocol.Config) (*plan, error) {
	opts, err := spec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	p := &plan{kind: cfg.String(optKind), encoding: cfg.String(optEncoding), scale: cfg.Float(optScale),
		onError: cfg.String(optOnError), batchRows: cfg.BatchRows, headers: map[string]string{}}
	p.roles, p.schema = notesRoles, NotesSchema
	if p.kind == KindAbsences {
		p.roles, p.schema = absencesRoles, AbsencesSchema
	}
	d := cfg.String(optDelimiter)
	if d == `\t` {
		d = "\t"
	}
	r, size := utf8.DecodeRuneInString(d)
	if size == 0 || size != len(d) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' {
		return nil, configErr("option %q: %q is not a usable delimiter (one character other than a quote or a line break)", optDelimiter, d)
	}
	p.comma = r
	if !(p.scale > 0) {
		return nil, configErr("option %q: %v is not a scale (expected a number above 0, such as 20)", optScale, p.scale)
	}
	if p.loc, err = time.LoadLocation(cfg.String(optTimezone)); err != nil {
		return nil, configErr("option %q: %q is not a time zone (expected a name such as \"Europe/Paris\")", optTimezone, cfg.String(optTimezone))
	}
	for h, col := range cfg.StringMap(optHeaders) {
		keys := make([]string, len(p.roles))
		ok := false
		for i, r := range p.roles {
			keys[i] = r.key
			ok = ok || r.key == col
		}
		if !ok {
			return nil, configErr("option %q: header %q: %q is not a column of kind %q (expected one of %s)",
				optHeaders, h, col, p.kind, strings.Join(keys, ", "))
		}
		p.headers[fold(h)] = col
	}
	path := cfg.String(optPath)
	p.files, err = filepath.Glob(path)
	if err != nil {
		return nil, configErr("option %q: bad glob %q: %v", optPath, path, err)
	}
	if len(p.files) == 0 {
		return nil, protocol.WithKind(fmt.Errorf("pronote export %s: no such file", path), protocol.ErrNotFound)
	}
	return p, nil
}

// Schema returns the schema of the kind of export, after checking that
// every file has a recognisable header.
func (Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	for _, f := range p.files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fr, err := p.open(f)
		if err != nil {
			return nil, err
		}
		_, err = fr.header()
		fr.close()
		if err != nil {
			return nil, err
		}
	}
	return p.schema, nil
}

// position is where a read stands: the file, and the records of it read
// (header and title lines included).
type position struct {
	File   int `json:"file"`
	Record int `json:"record"`
}

// Read emits the rows of every file in order. Each batch carries the
// position after its last record; resuming re-reads the file and skips the
// records before it.
func (Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newPlan(cfg)
	if err != nil {
		return err
	}
	var from position
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
		if from.File < 0 || from.File >= len(p.files) || from.Record < 0 {
			return fmt.Errorf("resume position %s is outside the %d files of %s: %w", cfg.Resume, len(p.files), Name, protocol.ErrConfig)
		}
	}
	bt := sdk.NewBatcher(mem, p.schema, p.batchRows, out, from)
	defer bt.Release()
	for i := from.File; i < len(p.files); i++ {
		skip := 0
		if i == from.File {
			skip = from.Record
		}
		if err := p.readFile(ctx, i, skip, bt); err != nil {
			return err
		}
	}
	return bt.Flush(ctx)
}

// fileReader reads the records of one file.
type fileReader struct {
	*plan
	path string
	f    *os.File
	r    *csvrec.Reader
	n    int      // records read
	cols []string // the header, as written
}

func (p *plan) open(path string) (*fileReader, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, protocol.WithKind(fmt.Errorf("pronote export %s: no such file", path), protocol.ErrNotFound)
		}
		return nil, fmt.Errorf("open pronote export: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var in io.Reader = br
	if bom, _ := br.Peek(3); string(bom) == "\ufeff" {
		br.Discard(3)
	} else {
		switch p.encoding {
		case "windows-1252":
			in = charmap.Windows1252.NewDecoder().Reader(br)
		case "iso-8859-1":
			in = charmap.ISO8859_1.NewDecoder().Reader(br)
		case "iso-8859-15":
			in = charmap.ISO8859_15.NewDecoder().Reader(br)
		}
	}
	// Exports write quotes inside unquoted fields: lazy quotes. Split by
	// physical lines, a quote that never closes costs its line, not the
	// rest of the file.
	r := csvrec.NewReader(in, p.comma, true, 0, "")
	return &fileReader{plan: p, path: path, f: f, r: r}, nil
}

func (fr *fileReader) close() { fr.f.Close() }

// read returns the next record; empty lines are passed over (they hold no
// data, and encoding/csv, which positions were counted with, skipped them).
func (fr *fileReader) read() ([]string, error) {
	rec, err := fr.r.Read()
	for err == nil && fr.r.Current().IsEmpty() {
		rec, err = fr.r.Read()
	}
	if err != io.EOF {
		fr.n++
	}
	return rec, err
}

// header finds the header line among the first records and maps its
// columns to roles: idx[role] is the column index, -1 if absent.
func (fr *fileReader) header() ([]int, error) {
	var first []string
	for range headerSearch {
		rec, err := fr.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fr.path, err)
		}
		if first == nil {
			first = slices.Clone(rec)
		}
		if idx, ok := fr.mapHeader(rec); ok {
			fr.cols = slices.Clone(rec)
			return idx, nil
		}
	}
	var want []string
	for _, r := range fr.roles {
		if r.required {
			want = append(want, fmt.Sprintf("%s (e.g. %q)", r.key, headerDoc[r.key]))
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%s: empty file, expected a header line with %s: %w", fr.path, strings.Join(want, ", "), protocol.ErrConfig)
	}
	return nil, fmt.Errorf("%s:1: no header line with the columns %s in the first %d lines of this %s export (first line: %q); add the names to the %q option: %w",
		fr.path, strings.Join(want, ", "), headerSearch, fr.kind, strings.Join(first, string(fr.comma)), optHeaders, protocol.ErrConfig)
}

func (fr *fileReader) mapHeader(rec []string) ([]int, bool) {
	idx := make([]int, len(fr.roles))
	for i := range idx {
		idx[i] = -1
	}
	for c, h := range rec {
		key := fold(h)
		if key == "" {
			continue
		}
		for i, r := range fr.roles {
			if idx[i] >= 0 {
				continue
			}
			if col, ok := fr.headers[key]; ok && col == r.key || slices.Contains(r.aliases, key) {
				idx[i] = c
				break
			}
		}
	}
	for i, r := range fr.roles {
		if r.required && idx[i] < 0 {
			return nil, false
		}
	}
	return idx, true
}

// badField is a field that could not be read.
type badField struct {
	col    int    // index in the record, -1 for the whole record
	column string // output column
	reason string
}

func (p *plan) readFile(ctx context.Context, i, skip int, bt *sdk.Batcher) error {
	fr, err := p.open(p.files[i])
	if err != nil {
		return err
	}
	defer fr.close()
	idx, err := fr.header()
	if err != nil {
		return err
	}
	conv := fr.notes
	if p.kind == KindAbsences {
		conv = fr.absences
	}
	for {
		if fr.n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := fr.read()
		if err == io.EOF {
			return nil
		}
		pos := position{File: i, Record: fr.n}
		if fr.n <= skip {
			continue
		}
		var pe *csvrec.ParseError
		if errors.As(err, &pe) {
			if err := fr.bad(ctx, bt, pos, pe.StartLine, pe.Column, pe.Raw, badField{col: -1, reason: pe.Err}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", fr.path, err)
		}
		line, _ := fr.r.FieldPos(0)
		if blank(rec) {
			bt.Skipped(pos)
			continue
		}
		cur := fr.r.Current()
		if n := len(rec); n != len(fr.cols) && !(n == len(fr.cols)+1 && trim(rec[n-1]) == "") {
			reason := fmt.Sprintf("expected %d fields as in the header, got %d", len(fr.cols), n)
			if cur.Lines > 1 {
				// Most likely a quote that closes too late: the lines
				// after the first are read again as the next records.
				reason += fmt.Sprintf(" in a record over %d lines (a quote not closed on its line?); reading resumes at line %d",
					cur.Lines, line+1)
				fr.r.Cut()
			}
			if err := fr.bad(ctx, bt, pos, line, 0, cur.Text(), badField{col: -1, reason: reason}); err != nil {
				return err
			}
			continue
		}
		get := func(role int) string {
			if c := idx[role]; c >= 0 && c < len(rec) {
				return trim(rec[c])
			}
			return ""
		}
		rows, bf := conv(get)
		if bf != nil {
			c := 0
			if bf.col >= 0 && idx[bf.col] >= 0 {
				line, c = fr.r.FieldPos(idx[bf.col])
				bf.reason = fmt.Sprintf("%s (column %d, %q)", bf.reason, idx[bf.col]+1, fr.cols[idx[bf.col]])
			}
			if err := fr.bad(ctx, bt, pos, line, c, cur.Text(), *bf); err != nil {
				return err
			}
			continue
		}
		if err := bt.Record(ctx, rows, pos); err != nil {
			return err
		}
	}
}

func blank(rec []string) bool {
	for _, s := range rec {
		if trim(s) != "" {
			return false
		}
	}
	return true
}

// bad applies the on_error policy to a bad record.
func (fr *fileReader) bad(ctx context.Context, bt *sdk.Batcher, pos position, line, col int, raw string, b badField) error {
	switch fr.onError {
	case onErrorSkip:
		bt.Skipped(pos)
		return nil
	case onErrorFail:
		at := fmt.Sprintf("%s:%d", fr.path, line)
		if col > 0 {
			at += fmt.Sprintf(":%d", col)
		}
		if b.column != "" {
			at += fmt.Sprintf(": column %q", b.column)
		}
		return fmt.Errorf("%s: %s (on_error = %q)", at, b.reason, onErrorFail)
	}
	return bt.DeadLetter(ctx, protocol.DeadLetter{
		Origin: fr.path, Line: int64(line), Column: b.column, Reason: b.reason, Raw: strings.ToValidUTF8(raw, "\uFFFD"),
	}, pos)
}

// Role indexes, in the order of notesRoles and absencesRoles.
const (
	rStudent = iota
	rLast
	rFirst
	rClass
	rSubject
	rPeriod
	rDate
	rNote
	rBareme
	rCoef
	rComment
)

const (
	rAbsDate = iota + rSubject
	rHalf
	rJustified
	rReason
	rRecorded
)

func (fr *fileReader) person(get func(int) string) ([]sdk.Cell, *badField) {
	id := get(rStudent)
	if id == "" {
		return nil, &badField{col: rStudent, column: "student_id", reason: "empty student id, expected the student's identifier"}
	}
	return []sdk.Cell{sdk.Str(id), sdk.Str(get(rLast)), sdk.Str(get(rFirst)), sdk.Str(get(rClass))}, nil
}

func (fr *fileReader) notes(get func(int) string) ([][]sdk.Cell, *badField) {
	row, bf := fr.person(get)
	if bf != nil {
		return nil, bf
	}
	row = append(row, sdk.Str(get(rSubject)), sdk.Str(get(rPeriod)))
	date := sdk.Cell{Null: true}
	if s := get(rDate); s != "" {
		d, ok := parseDate(s)
		if !ok {
			return nil, &badField{col: rDate, column: "date", reason: fmt.Sprintf("expected a date dd/mm/yyyy, got %q", s)}
		}
		date = sdk.Cell{I: d}
	}
	m, err := parseMark(get(rNote))
	if err != nil {
		return nil, &badField{col: rNote, column: "mark", reason: err.Error()}
	}
	scale := fr.scale
	if s := get(rBareme); s != "" {
		v, ok := parseScale(s)
		if !ok {
			return nil, &badField{col: rBareme, column: "scale", reason: fmt.Sprintf("expected a scale above 0 such as \"20\" or \"/40\", got %q", s)}
		}
		if m.scale > 0 && v != m.scale {
			return nil, &badField{col: rNote, column: "mark",
				reason: fmt.Sprintf("mark %q is out of %v but the scale column says %v", get(rNote), m.scale, v)}
		}
		scale = v
	}
	if m.scale > 0 {
		scale = m.scale
	}
	markCell, rawCell := sdk.Cell{Null: true}, sdk.Cell{Null: true}
	if m.status == statusOK {
		if m.raw > scale {
			return nil, &badField{col: rNote, column: "mark",
				reason: fmt.Sprintf("mark %v is above its scale /%v", m.raw, scale)}
		}
		markCell, rawCell = sdk.Cell{F: round4(m.raw / scale * fr.scale)}, sdk.Cell{F: m.raw}
	}
	coef := sdk.Cell{Null: true}
	if s := get(rCoef); s != "" {
		v, ok := parseNumber(s)
		if !ok || v < 0 {
			return nil, &badField{col: rCoef, column: "coefficient", reason: fmt.Sprintf("expected a coefficient such as \"1\" or \"0,5\", got %q", s)}
		}
		coef = sdk.Cell{F: v}
	}
	row = append(row, date, markCell, sdk.Cell{S: m.status}, rawCell, sdk.Cell{F: scale}, coef, sdk.Str(get(rComment)))
	return [][]sdk.Cell{row}, nil
}

func (fr *fileReader) absences(get func(int) string) ([][]sdk.Cell, *badField) {
	row, bf := fr.person(get)
	if bf != nil {
		return nil, bf
	}
	s := get(rAbsDate)
	d, ok := parseDate(s)
	if !ok {
		return nil, &badField{col: rAbsDate, column: "date", reason: fmt.Sprintf("expected a date dd/mm/yyyy, got %q", s)}
	}
	halves, ok := parseHalf(get(rHalf))
	if !ok {
		return nil, &badField{col: rHalf, column: "half",
			reason: fmt.Sprintf("expected a half-day (Matin, Après-midi or Journée), got %q", get(rHalf))}
	}
	reason := get(rReason)
	just := sdk.Cell{Null: true}
	if s := get(rJustified); s != "" {
		v, ok := parseBool(s)
		if !ok {
			return nil, &badField{col: rJustified, column: "justified", reason: fmt.Sprintf("expected Oui or Non, got %q", s)}
		}
		just = sdk.Cell{B: v}
	} else if strings.Contains(fold(reason), "non justifi") {
		just = sdk.Cell{B: false}
	}
	rec := sdk.Cell{Null: true}
	if s := get(rRecorded); s != "" {
		ts, ok := parseTimestamp(s, fr.loc)
		if !ok {
			return nil, &badField{col: rRecorded, column: "recorded_at", reason: fmt.Sprintf("expected a time dd/mm/yyyy HH:MM, got %q", s)}
		}
		rec = sdk.Cell{I: ts}
	}
	rows := make([][]sdk.Cell, len(halves))
	for i, h := range halves {
		rows[i] = append(slices.Clone(row), sdk.Cell{I: d}, sdk.Cell{S: h}, just, sdk.Str(reason), rec)
	}
	return rows, nil
}
