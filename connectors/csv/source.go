package csv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/internal/csvrec"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
	"github.com/vigie-edu/vigie/internal/suggest"
)

// SourceName is the registry name of the CSV source.
const SourceName = "csv"

// DefaultMaxRecordLines is the default of option max_record_lines.
const DefaultMaxRecordLines = csvrec.DefaultMaxLines

// on_error policies.
const (
	onErrorDeadLetter = "dead_letter"
	onErrorSkip       = "skip"
	onErrorFail       = "fail"
)

// Source option names.
const (
	optColumns         = "columns"
	optInferRows       = "infer_rows"
	optNullValues      = "null_values"
	optOnError         = "on_error"
	optRename          = "rename"
	optEncoding        = "encoding"
	optDecimal         = "decimal"
	optDateFormat      = "date_format"
	optTimestampFormat = "timestamp_format"
	optTimezone        = "timezone"
	optLazyQuotes      = "lazy_quotes"
	optMaxRecordLines  = "max_record_lines"
)

// Values of the delimiter and decimal options that ask for detection.
const (
	delimiterAuto = "auto"
	decimalAuto   = "auto"
)

// Source is the CSV source, registered as "csv". It is stateless and safe for
// concurrent use.
type Source struct{}

var _ protocol.Source = Source{}

var sourceSpec = protocol.Spec{
	Name:    SourceName,
	Kind:    protocol.KindSource,
	Version: "1.2.0",
	Doc: `Connector "csv" (source): reads CSV files into typed Arrow batches.
path is a file or a glob ("exports/*.csv", "exports/**/*.csv.gz"): the files
are read one after the other in sorted order, and must all have the header
of the first (columns may come in another order). Files starting with the
gzip magic number are gunzipped. The encoding is detected per file unless
set: a byte order mark says UTF-8 or UTF-16, valid UTF-8 is UTF-8, anything
else Windows-1252 (what Excel writes in France; it is ISO-8859-1 plus
€, œ, ’ and the like). The delimiter is detected unless set: among , ; tab
and |, the one that splits the first lines of the first file into the same
number of fields; quotes follow RFC 4180 ("" inside a quoted field), or are
lenient with lazy_quotes. Columns are named by the header line (or column_1,
column_2, ... without one), then renamed by "rename". Types come from the
"columns" option, else are inferred from the first infer_rows rows: int64 if
every value is an integer, float64 if every value is a number, bool if every
value is true or false, date32 if every value is a date in date_format
(yyyy-mm-dd by default), timestamp_us if timestamp_format is set and every
value matches it, utf8 otherwise; numbers written with a leading zero
("0750") stay text. With decimal = "auto", a file not delimited by commas
whose sampled numbers are written 12,5 (and none 12.5) has a decimal comma.
Types are inferred when the pipeline is prepared and a run keeps them: a
file changed since then gives dead letters (or an error if its columns
changed); only the decimal mark is detected again. Every column is nullable; null_values are read as nulls. A row with the
wrong number of fields, a value that does not parse as its column's type,
text that is not valid UTF-8 or a malformed quote goes, per on_error, to the
dead-letter output (with file, line, column, reason and the record's text
as in the file), is skipped, or fails the read. Every line of a file ends
in exactly one of a row, a dead letter or the header: a dead letter's line
is where its record starts and its text holds all the record's lines. A
record that cannot be split into fields (a quote that never closes, or
stays open past max_record_lines lines; a quote out of place) or that
spans several lines and has the wrong number of fields is malformed: its
first line alone is dead-lettered and reading resumes on the next line, so
an open quote does not swallow the lines after it; with lazy_quotes, so is
a field over several lines that holds a stray quote. An empty line is a row
of one empty field: a row of a one-column file, a dead letter otherwise.
Positions name the file and the offset in its decoded text.
A plain UTF-8 file with 16 MiB or more to read is parsed in 8 MiB ranges
on every core, its rows still emitted in file order with the same dead
letters and lines; each range ends a batch, so batches may hold fewer
than batch_rows rows.
Sinks of the same family: "csv_file", "parquet".`,
	Options: []protocol.Option{
		{Name: optPath, Type: protocol.TypePath, Required: true,
			Doc: `CSV file to read, or a glob of files read in sorted order ("exports/*.csv", "**" for any folders); .gz files are gunzipped`},
		{Name: optDelimiter, Type: protocol.TypeString, Default: delimiterAuto,
			Doc: `field separator, one character ("\t" or the two characters \t for a tab), or "auto" to detect it among , ; tab and |`},
		{Name: optHeader, Type: protocol.TypeBool, Default: true, Doc: "the first line of each file names the columns"},
		{Name: optRename, Type: protocol.TypeStringMap,
			Doc: `header name -> column name, e.g. { "Nom" = "last_name" }; "columns" may use either name`},
		{Name: optColumns, Type: protocol.TypeStringMap,
			Doc: "column name -> type (utf8, int32, int64, float64, bool, date32, timestamp_us); declared types win over inference; a declared bool also reads 1/0, yes/no, oui/non"},
		{Name: optInferRows, Type: protocol.TypeInt, Default: int64(1000), Doc: "rows sampled to infer the types of undeclared columns (and the decimal mark)"},
		{Name: optNullValues, Type: protocol.TypeStringList, Default: []string{"", "NA", "NULL"}, Doc: `field values read as null (add "?" for OULAD, "-" or "N.A." for some exports)`},
		{Name: optEncoding, Type: protocol.TypeString, Default: encAuto,
			Enum: []string{encAuto, encUTF8, encWindows1252, encISO88591, encUTF16},
			Doc:  "text encoding of the files; auto: a byte order mark, else UTF-8 if valid, else Windows-1252 (decided per file on its first 64 KiB)"},
		{Name: optDecimal, Type: protocol.TypeString, Default: decimalAuto, Enum: []string{decimalAuto, ".", ","},
			Doc: `decimal mark of float64 values; with ",", 12,5 reads as 12.5 (12.5 still does; 1.234,5 does not). auto: "," when the file is not comma-delimited and sampled numbers look like 12,5`},
		{Name: optDateFormat, Type: protocol.TypeString, Default: "yyyy-mm-dd",
			Doc: `format of date32 values: a pattern (dd/mm/yyyy; days and months may have one digit), a strftime format (%d/%m/%Y) or a Go layout (02/01/2006)`},
		{Name: optTimestampFormat, Type: protocol.TypeString,
			Doc: `format of timestamp_us values (dd/mm/yyyy HH:mm:ss, %d/%m/%Y %H:%M:%S or a Go layout); unset: ISO 8601 (2025-09-01T08:30:00Z, 2025-09-01 08:30:00, with or without zone and fraction). When set, timestamps are also inferred`},
		{Name: optTimezone, Type: protocol.TypeString, Default: "UTC",
			Doc: `IANA time zone of timestamps written without an offset, e.g. "Europe/Paris"`},
		{Name: optLazyQuotes, Type: protocol.TypeBool, Default: false,
			Doc: `accept a quote inside an unquoted field (5"3) and a stray quote in a quoted one, as some exports write them`},
		{Name: optMaxRecordLines, Type: protocol.TypeInt, Default: int64(DefaultMaxRecordLines),
			Doc: `most lines one record may span (a quoted field with line breaks); a quote still open after that many lines, or at the end of the file, makes the record's first line a dead letter and reading resumes on the line after it`},
		{Name: optOnError, Type: protocol.TypeString, Default: onErrorDeadLetter,
			Enum: []string{onErrorDeadLetter, onErrorSkip, onErrorFail},
			Doc:  "what to do with a bad row: send it to the dead-letter output, skip it, or fail the read"},
	},
}

// Spec describes the connector and its options.
func (Source) Spec() protocol.Spec { return sourceSpec }

// Schema returns the schema that Read emits for cfg.
func (s Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newPlan(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// plan is what a read needs to know before reading data: checked options,
// the files and the output schema.
type plan struct {
	files       []string
	comma       rune
	lazyQuotes  bool
	maxLines    int
	headerLines int // lines of the first file's header (blank lines before it included)
	header      bool
	encoding    string
	rename      map[string]string
	nulls       map[string]bool
	nullLens    uint64 // bit n set: a null value is n bytes long (n < 64)
	onError     string
	batchRows   int
	formats     *formats
	schema      *arrow.Schema
	types       []colType
}

// newPlan checks cfg, lists the files, checks their headers and reads the
// inference sample.
func newPlan(ctx context.Context, cfg protocol.Config) (*plan, error) {
	cfg, err := checked(sourceSpec, cfg)
	if err != nil {
		return nil, err
	}
	p := &plan{
		lazyQuotes: cfg.Bool(optLazyQuotes),
		maxLines:   int(cfg.Int(optMaxRecordLines)),
		header:     cfg.Bool(optHeader),
		encoding:   cfg.String(optEncoding),
		rename:     cfg.StringMap(optRename),
		nulls:      make(map[string]bool),
		onError:    cfg.String(optOnError),
		batchRows:  cfg.BatchRows,
	}
	if p.batchRows <= 0 {
		p.batchRows = protocol.DefaultBatchRows
	}
	for _, n := range cfg.StringList(optNullValues) {
		p.nulls[n] = true
		p.nullLens |= 1 << min(len(n), 63)
	}
	if p.formats, err = newFormats(cfg.String(optDateFormat), cfg.String(optTimestampFormat), cfg.String(optTimezone)); err != nil {
		return nil, err
	}
	inferTimestamps := cfg.String(optTimestampFormat) != ""
	if cfg.String(optDelimiter) != delimiterAuto {
		if p.comma, err = delimiter(cfg); err != nil {
			return nil, err
		}
	}
	if p.maxLines < 1 {
		return nil, fmt.Errorf("connector %q: option %q: %d lines: expected 1 or more: %w",
			SourceName, optMaxRecordLines, p.maxLines, protocol.ErrConfig)
	}
	for col, typ := range cfg.StringMap(optColumns) {
		if _, err := lookupType(col, typ); err != nil {
			return nil, fmt.Errorf("connector %q: option %q: %w", SourceName, optColumns, err)
		}
	}
	if p.files, err = listFiles(cfg.String(optPath)); err != nil {
		return nil, err
	}
	sniff := p.comma == 0

	// The first file with a header names the columns.
	var (
		in    *input
		r     *csvrec.Reader
		first []string
		fi    int
	)
	for fi = range p.files {
		if in, err = openInput(p.files[fi], p.encoding); err != nil {
			return nil, err
		}
		if sniff {
			// On the same open as the header: a named pipe can be read once.
			head, err := peekFirst(in.text)
			if err != nil {
				in.Close()
				return nil, fmt.Errorf("read %s: %w", p.files[fi], err)
			}
			p.comma = sniffDelimiter(head, len(head) < in.text.Size() && atEOF(in.text))
		}
		r = p.reader(in)
		first, err = p.readHeader(in, r)
		if err != io.EOF {
			break
		}
		in.Close()
	}
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file, expected at least a header line: %w", p.files[0], protocol.ErrConfig)
	}
	defer func() {
		if in != nil {
			in.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	if p.header {
		p.headerLines = r.Line()
	}
	names, err := p.columnNames(p.files[fi], first)
	if err != nil {
		return nil, err
	}
	declared, err := p.declared(cfg.StringMap(optColumns), first, names)
	if err != nil {
		return nil, err
	}
	for _, other := range p.files[fi+1:] {
		if _, err := p.headerMap(other, names); err != nil {
			return nil, err
		}
	}

	// Read gets the schema the engine prepared the stage with: the columns
	// keep its types whatever the sample says now (the file may have
	// changed since), and the sample only detects the decimal mark, which
	// the schema does not carry.
	var given []colType
	if cfg.Schema != nil {
		if given, err = schemaTypes(p.files[fi], cfg.Schema, names); err != nil {
			return nil, err
		}
	}

	// Two inferences run side by side when the decimal mark is to be
	// detected; the sample decides which one holds.
	decimal := cfg.String(optDecimal)
	comma := *p.formats
	comma.decimalComma = true
	dot := *p.formats
	dot.decimalComma = false
	infer := make([]*inference, len(names))
	var inferComma []*inference
	if decimal == decimalAuto && p.comma != ',' {
		inferComma = make([]*inference, len(names))
	}
	inferRows := int64(0)
	for i, n := range names {
		if _, ok := declared[n]; ok {
			continue
		}
		inferRows = cfg.Int(optInferRows)
		if given != nil {
			continue
		}
		f := &dot
		if decimal == "," {
			f = &comma
		}
		infer[i] = newInference(f, inferTimestamps)
		if inferComma != nil {
			inferComma[i] = newInference(&comma, inferTimestamps)
		}
	}
	if given != nil && inferComma == nil {
		inferRows = 0 // nothing left to detect
	}
	commaNums, dotNums := 0, 0
	var fmap []int // the file's field index of each column
	nfields := len(names)
	sample := func(rec []string) {
		if len(rec) != nfields {
			return // a bad row: Read will report it
		}
		for i := range names {
			s := rec[i]
			if fmap != nil {
				s = rec[fmap[i]]
			}
			if p.nulls[s] {
				continue
			}
			switch looksDecimal(s) {
			case ',':
				commaNums++
			case '.':
				dotNums++
			}
			if infer[i] != nil {
				infer[i].add(s)
			}
			if inferComma != nil && inferComma[i] != nil {
				inferComma[i].add(s)
			}
		}
	}
	if !p.header {
		sample(first)
	}
	n := p.sampled()
	for n < inferRows {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := r.Next()
		if err == io.EOF {
			// Go on sampling in the next file.
			in.Close()
			in = nil
			if fi++; fi == len(p.files) {
				break
			}
			if in, r, err = p.open(fi); err != nil {
				return nil, err
			}
			if fmap, nfields, err = p.skipHeader(in, r, names); err != nil {
				return nil, err
			}
			continue
		}
		n++
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p.files[fi], err)
		}
		if rec.Malformed != "" {
			continue
		}
		sample(rec.Fields)
	}

	p.formats = &dot
	if decimal == "," || (inferComma != nil && commaNums > 0 && dotNums == 0) {
		p.formats = &comma
		if inferComma != nil {
			infer = inferComma
		}
	}
	if given != nil {
		p.types, p.schema = given, cfg.Schema
		return p, nil
	}
	fields := make([]arrow.Field, len(names))
	p.types = make([]colType, len(names))
	for i, n := range names {
		if infer[i] != nil {
			p.types[i] = infer[i].result()
		} else {
			p.types[i] = colTypes[declared[n]]
		}
		fields[i] = arrow.Field{Name: n, Type: p.types[i].arrow, Nullable: true}
	}
	p.schema = arrow.NewSchema(fields, nil)
	return p, nil
}

// schemaTypes returns the column types of schema, a schema this source
// returned, after checking that its columns are still names, those read
// from the header of the file at path.
func schemaTypes(path string, schema *arrow.Schema, names []string) ([]colType, error) {
	fields := schema.Fields()
	same := len(fields) == len(names)
	for i := 0; same && i < len(fields); i++ {
		same = fields[i].Name == names[i]
	}
	if !same {
		prepared := make([]string, len(fields))
		for i, f := range fields {
			prepared[i] = f.Name
		}
		return nil, fmt.Errorf("%s: the columns are now %q, the stage was prepared with %q: %w",
			path, names, prepared, protocol.ErrConfig)
	}
	types := make([]colType, len(fields))
	for i, f := range fields {
		found := false
		for _, t := range colTypes {
			if arrow.TypeEqual(t.arrow, f.Type) {
				types[i], found = t, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("column %q: type %s is not one this source reads: %w", f.Name, f.Type, protocol.ErrConfig)
		}
	}
	return types, nil
}

// looksDecimal returns ',' for a number like 12,5, '.' for one like 12.5,
// 0 otherwise.
func looksDecimal(s string) byte {
	s = strings.TrimLeft(strings.TrimSpace(s), "+-")
	i := strings.IndexAny(s, ".,")
	if i <= 0 || i == len(s)-1 {
		return 0
	}
	for j := 0; j < len(s); j++ {
		if j != i && (s[j] < '0' || s[j] > '9') {
			return 0
		}
	}
	return s[i]
}

// sampled returns how many inference rows the first record counts for.
func (p *plan) sampled() int64 {
	if p.header {
		return 0
	}
	return 1
}

// columnNames names the columns from the first record, renamed.
func (p *plan) columnNames(path string, first []string) ([]string, error) {
	names := make([]string, len(first))
	seen := make(map[string]int, len(first))
	orig := make([]string, len(first))
	for i, s := range first {
		name := strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
		if !p.header || name == "" {
			name = fmt.Sprintf("column_%d", i+1)
		}
		orig[i] = name
		if to, ok := p.rename[name]; ok {
			name = to
		}
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s:1: column %q appears twice in the header (columns %d and %d): %w",
				path, name, j+1, i+1, protocol.ErrConfig)
		}
		seen[name] = i
		names[i] = name
	}
	var errs []error
	for _, from := range sortedKeys(p.rename) {
		if slices.Contains(orig, from) {
			continue
		}
		msg := fmt.Sprintf("option %q: %s:1: header has no column %q to rename%s", optRename, path, from, suggest.Hint(from, orig, "header"))
		errs = append(errs, fmt.Errorf("%s: %w", msg, protocol.ErrConfig))
	}
	return names, errors.Join(errs...)
}

// declared returns the declared column types by column name; a declared
// column may be named as in the header before its rename.
func (p *plan) declared(cols map[string]string, header, names []string) (map[string]string, error) {
	out := make(map[string]string, len(cols))
	var errs []error
	for _, c := range sortedKeys(cols) {
		if slices.Contains(names, c) {
			out[c] = cols[c]
			continue
		}
		if to, ok := p.rename[c]; ok && slices.Contains(names, to) {
			out[to] = cols[c]
			continue
		}
		msg := fmt.Sprintf("%s: declared column %q is not in the file%s", p.files[0], c, suggest.Hint(c, names, "columns"))
		errs = append(errs, fmt.Errorf("option %q: %s: %w", optColumns, msg, protocol.ErrConfig))
	}
	return out, errors.Join(errs...)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// headerMap reads the header of file path and maps the columns to its
// fields (nil: the same order). Without a header, fields are positional.
func (p *plan) headerMap(path string, names []string) ([]int, error) {
	if !p.header {
		return nil, nil
	}
	in, err := openInput(path, p.encoding)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	fmap, _, err := p.skipHeader(in, p.reader(in), names)
	return fmap, err
}

// skipHeader reads the header of a file other than the first and maps the
// columns to its fields; it returns the mapping (nil: same order) and the
// number of fields a row must have. An empty file has no rows.
func (p *plan) skipHeader(in *input, r *csvrec.Reader, names []string) ([]int, int, error) {
	if !p.header {
		return nil, len(names), nil
	}
	rec, err := p.readHeader(in, r)
	if err == io.EOF {
		return nil, len(names), nil
	}
	if err != nil {
		return nil, 0, err
	}
	got, err := p.columnNames(in.path, rec)
	if err != nil {
		return nil, 0, err
	}
	if slices.Equal(got, names) {
		return nil, len(names), nil
	}
	fmap := make([]int, len(names))
	var missing []string
	for i, n := range names {
		j := slices.Index(got, n)
		if j < 0 {
			missing = append(missing, n)
		}
		fmap[i] = j
	}
	if len(missing) > 0 || len(got) != len(names) {
		return nil, 0, fmt.Errorf("%s:1: header does not match the first file's %s: it has columns %s, expected %s: %w",
			in.path, p.files[0], strings.Join(got, ", "), strings.Join(names, ", "), protocol.ErrConfig)
	}
	return fmap, len(names), nil
}

// readHeader returns the fields of the first record of a file, past any
// empty lines (which count as header lines), io.EOF if it has none.
func (p *plan) readHeader(in *input, r *csvrec.Reader) ([]string, error) {
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", in.path, err)
		}
		if rec.Malformed != "" {
			return nil, fmt.Errorf("%s:%d:%d: header: %s: %w", in.path, rec.Line, rec.Col, rec.Malformed, protocol.ErrConfig)
		}
		if len(rec.Fields) == 1 && rec.Fields[0] == "" && len(csvrec.Content(rec.Raw)) == 0 {
			continue
		}
		return slices.Clone(rec.Fields), nil
	}
}

// open opens file i and returns a CSV reader over its text.
func (p *plan) open(i int) (*input, *csvrec.Reader, error) {
	in, err := openInput(p.files[i], p.encoding)
	if err != nil {
		return nil, nil, err
	}
	return in, p.reader(in), nil
}

// reader returns a record reader over in's text as it stands.
func (p *plan) reader(in *input) *csvrec.Reader {
	return csvrec.NewReader(in.text, p.comma, p.lazyQuotes, p.maxLines, optMaxRecordLines)
}

// position is where a read stands: the file and the byte offset of the next
// record in its decoded text (past any byte order mark, gunzipped, in
// UTF-8).
type position struct {
	File   int    `json:"file,omitempty"`
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset"`
}

// Read emits the rows of the files in batches of at most cfg.BatchRows
// rows, each with the position of the next record as its position; with
// cfg.Resume, it reads from that position. Dead letters are sent in groups,
// each group before the batch that follows the rows it replaces, so that an
// acknowledged batch never leaves a bad row before it unreported; dead
// letters after the last batch come with an empty batch that carries the
// final position.
func (s Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newPlan(ctx, cfg)
	if err != nil {
		return err
	}
	var from position
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
		if from.Path != "" {
			if from.File = slices.Index(p.files, from.Path); from.File < 0 {
				return fmt.Errorf("resume at %s: the file no longer matches option %q (%d files match): %w",
					from.Path, optPath, len(p.files), protocol.ErrConfig)
			}
		}
		if from.File < 0 || from.File >= len(p.files) {
			return fmt.Errorf("resume at file %d: only %d files match option %q: %w", from.File, len(p.files), optPath, protocol.ErrConfig)
		}
	}
	rd := &reading{plan: p, out: sdk.NewOut(out), vals: make([]value, len(p.types))}
	defer rd.close()
	b := newBuilder(mem, p.schema, p.batchRows)
	defer b.Release()
	rows := 0
	// Dead letters go just before the batch whose position covers them;
	// a tail of only bad rows gets an empty batch (sdk.Out).
	flush := func() error {
		n := rows
		rows = 0
		return rd.out.Emit(ctx, b, n, rd.position())
	}
	for fi := from.File; fi < len(p.files); fi++ {
		off := int64(0)
		if fi == from.File {
			off = from.Offset
		}
		if err := rd.openFile(fi, off); err != nil {
			return err
		}
		start := rd.base + rd.r.InputOffset()
		f, size, err := rd.parallelText(start)
		if err != nil {
			return err
		}
		if f != nil {
			// Rows of earlier files first: the ranges emit their own batches.
			if err := flush(); err != nil {
				f.Close()
				return err
			}
			end, err := rd.readParallel(ctx, mem, f, start, size, rd.lineBase+rd.r.Line(), b)
			f.Close()
			if err != nil {
				return err
			}
			rd.base, rd.r = end, nil
			if fi < len(p.files)-1 {
				rd.close()
			}
			continue
		}
		for n := 0; ; n++ {
			if n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			ok, err := rd.next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			rd.appendRow(b)
			if rows++; rows == p.batchRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if fi < len(p.files)-1 {
			rd.close()
		}
	}
	return flush()
}

// reading is the state of one Read.
type reading struct {
	*plan
	fi       int    // the file being read
	in       *input // its text
	base     int64  // the offset in that text where r started
	lineBase int    // lines before where r started
	fmap     []int  // the file's field of each column, nil: the same order
	nfields  int    // fields a row of the file must have
	r        *csvrec.Reader
	out      *sdk.Out // holds dead letters until the batch covering them
	vals     []value  // the current row, parsed
	// speculative: a bad row stops the read with errRedo (a range parsed
	// in parallel, whose line numbers are not known yet).
	speculative bool
	apps        []func(*value)       // per column: appends a value to appsFor
	appsFor     *array.RecordBuilder // the builder apps append to
}

// appendRow appends the row in vals to b.
func (rd *reading) appendRow(b *array.RecordBuilder) {
	if rd.apps == nil || rd.appsFor != b {
		rd.apps, rd.appsFor = appenders(b), b
	}
	for i := range rd.vals {
		rd.apps[i](&rd.vals[i])
	}
}

// openFile opens file fi at offset off of its text (0: the start, before
// the header).
func (rd *reading) openFile(fi int, off int64) error {
	rd.fi, rd.base, rd.lineBase = fi, off, 0
	path := rd.files[fi]
	names := make([]string, rd.schema.NumFields())
	for i, f := range rd.schema.Fields() {
		names[i] = f.Name
	}
	var err error
	if off > 0 {
		// The header is behind: read it from a second look at the file.
		if rd.fmap, err = rd.headerMap(path, names); err != nil {
			return err
		}
		rd.nfields = len(names)
	}
	if rd.in, err = openInput(path, rd.encoding); err != nil {
		return err
	}
	if off > 0 {
		if rd.lineBase, err = rd.in.skip(off); err != nil {
			return err
		}
	}
	rd.r = rd.reader(rd.in)
	switch {
	case off == 0 && fi == 0:
		// The first file named the columns: skip its header unchecked, as
		// the plan read it (a named pipe may not give the same one twice).
		rd.fmap, rd.nfields = nil, len(names)
		if rd.header {
			if _, err := rd.readHeader(rd.in, rd.r); err != nil && err != io.EOF {
				return err
			}
		}
	case off == 0:
		rd.fmap, rd.nfields, err = rd.skipHeader(rd.in, rd.r, names)
	}
	return err
}

// position returns where the read stands.
func (rd *reading) position() position {
	pos := position{File: rd.fi, Path: rd.files[rd.fi], Offset: rd.base}
	if rd.r != nil {
		pos.Offset += rd.r.InputOffset()
	}
	return pos
}

// close closes the file being read, if any; position still works after.
func (rd *reading) close() {
	if rd.in != nil {
		rd.in.Close()
		rd.in = nil
	}
}

// next reads and parses the next row into vals. It returns false for a bad
// row that was dealt with (dead letter or skip), an error to stop the read,
// io.EOF at the end.
func (rd *reading) next(ctx context.Context) (bool, error) {
	rec, err := rd.r.Next()
	if err == io.EOF {
		return false, err
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", rd.files[rd.fi], err)
	}
	if rec.Malformed != "" {
		return false, rd.bad(ctx, badRow{line: rec.Line, col: rec.Col, reason: rec.Malformed, raw: rec.Text()})
	}
	if len(rec.Fields) != rd.nfields {
		reason := fmt.Sprintf("expected %d fields, got %d", rd.nfields, len(rec.Fields))
		switch {
		case len(csvrec.Content(rec.Raw)) == 0:
			reason = fmt.Sprintf("empty line, expected %d fields", rd.nfields)
		case rec.Lines > 1:
			// Most likely a quote that closes too late: the lines after the
			// first are read again.
			reason = fmt.Sprintf("expected %d fields, got %d in a record over %d lines (a quote not closed on its line?); "+
				"reading resumes at line %d", rd.nfields, len(rec.Fields), rec.Lines, rec.Line+1+rd.lineBase)
			rd.r.Cut()
		}
		return false, rd.bad(ctx, badRow{line: rec.Line, reason: reason, raw: rec.Text()})
	}
	checkUTF8 := rd.in.encoding == encUTF8
	for i := range rd.vals {
		j := i
		if rd.fmap != nil {
			j = rd.fmap[i]
		}
		s := rec.Fields[j]
		v := &rd.vals[i]
		*v = value{Null: rd.isNull(s)}
		reason := ""
		switch {
		case v.Null:
			continue
		case checkUTF8 && !utf8.ValidString(s):
			reason = fmt.Sprintf("invalid UTF-8 in %q (is the file in Windows-1252? set option %q)", s, optEncoding)
		case rd.types[i].parse(rd.formats, s, v):
			continue
		default:
			reason = fmt.Sprintf("expected %s, got %q", rd.types[i].name, s)
		}
		l, c := rec.FieldPos(j)
		return false, rd.bad(ctx, badRow{line: rec.Line, fieldLine: l, col: c, column: rd.schema.Field(i).Name, raw: rec.Text(), reason: reason})
	}
	return true, nil
}

// isNull reports whether s is one of the null values; most fields are
// told apart by their length alone, without a map lookup.
func (p *plan) isNull(s string) bool {
	if p.nullLens&(1<<min(len(s), 63)) == 0 {
		return false
	}
	return p.nulls[s]
}

// badRow is a row that could not be read.
type badRow struct {
	line      int // where the record starts
	fieldLine int // where the faulty field starts, 0: line
	col       int
	column    string
	reason    string
	raw       string // the record's text as in the file
}

// bad applies the on_error policy to a bad row.
func (rd *reading) bad(ctx context.Context, b badRow) error {
	if rd.speculative {
		return errRedo
	}
	b.line += rd.lineBase
	if b.fieldLine == 0 {
		b.fieldLine = b.line
	} else {
		b.fieldLine += rd.lineBase
	}
	path := rd.files[rd.fi]
	switch rd.onError {
	case onErrorSkip:
		return nil
	case onErrorFail:
		pos := fmt.Sprintf("%s:%d", path, b.fieldLine)
		if b.col > 0 {
			pos += fmt.Sprintf(":%d", b.col)
		}
		if b.column != "" {
			pos += fmt.Sprintf(": column %q", b.column)
		}
		return fmt.Errorf("%s: %s (on_error = %q)", pos, b.reason, onErrorFail)
	}
	return rd.out.DeadLetter(ctx, protocol.DeadLetter{
		Origin: path,
		Line:   int64(b.line),
		Column: b.column,
		Reason: b.reason,
		Raw:    strings.ToValidUTF8(b.raw, "\uFFFD"),
	})
}
