package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Source option names and values.
const (
	optQuery      = "query"
	optChunkRows  = "chunk_rows"
	optNumeric    = "numeric"
	numericDec    = "decimal"
	numericFloat  = "float"
	keyTextPrefix = "vigie_key_"
)

// Source is the PostgreSQL source, registered as "postgres_query". It is
// stateless and safe for concurrent use.
type Source struct{}

var _ protocol.Source = Source{}

var sourceSpec = protocol.Spec{
	Name:    SourceName,
	Kind:    protocol.KindSource,
	Version: "0.1.0",
	Doc: `Connector "postgres_query" (source): reads a table, or the result of a query,
in chunks of chunk_rows rows ordered by the key columns (keyset pagination:
each chunk is one query continuing after the previous chunk's last key, so
memory holds one chunk whatever the table's size, and a resumed read starts
after the last key delivered). The key must be unique and never null; a
duplicate or a null key stops the read with an error rather than lose
rows. The whole read sees one snapshot (a repeatable-read transaction).
Columns are typed from the result: smallint, integer, bigint as int16,
int32, int64; real and double precision as float32 and float64; numeric(p,s)
as decimal128(p,s) (p <= 38; numeric = "float" reads them as float64), and
numeric without a declared precision as float64; text, varchar, char, name
as utf8; boolean; date as date32; timestamp as timestamp[us] and timestamptz
as timestamp[us, UTC]. Other types are refused: cast them in the query
(col::text). The connection string comes from the environment (dsn_env) or
a file (dsn_file), never from the pipeline file.`,
	Options: append([]protocol.Option{
		{Name: optTable, Type: protocol.TypeString, Doc: "table to read, optionally schema-qualified (give table or query)"},
		{Name: optQuery, Type: protocol.TypeString, Doc: "SELECT whose rows to read, without ORDER BY or LIMIT (give table or query)"},
		{Name: optKey, Type: protocol.TypeStringList, Required: true, Doc: "unique, not null columns the read is ordered and chunked by (the primary key)"},
		{Name: optChunkRows, Type: protocol.TypeInt, Default: int64(0), Doc: "rows per query and per batch, at most the pipeline's batch_rows (default: batch_rows)"},
		{Name: optNumeric, Type: protocol.TypeString, Default: numericDec, Enum: []string{numericDec, numericFloat},
			Doc: "numeric(p,s) columns as decimal128(p,s) (exact) or float64"},
	}, connectionOptions...),
}

// Spec describes the connector and its options.
func (Source) Spec() protocol.Spec { return sourceSpec }

func checkSource(cfg protocol.Config) (protocol.Config, error) {
	opts, err := sourceSpec.Check(cfg.Options)
	if err != nil {
		return cfg, err
	}
	cfg.Options = opts
	table, query := strings.TrimSpace(cfg.String(optTable)), strings.TrimSpace(cfg.String(optQuery))
	if (table == "") == (query == "") {
		return cfg, configError(optTable, "give either table or query, not both nor neither")
	}
	if len(cfg.StringList(optKey)) == 0 {
		return cfg, configError(optKey, "name the key columns the read is ordered by")
	}
	if cfg.Int(optChunkRows) < 0 {
		return cfg, configError(optChunkRows, "must be positive")
	}
	return cfg, nil
}

// from is the FROM item of the read.
func from(cfg protocol.Config) string {
	if t := strings.TrimSpace(cfg.String(optTable)); t != "" {
		return ident(t).Sanitize() + " AS vigie_q"
	}
	return "(" + strings.TrimRight(strings.TrimSpace(cfg.String(optQuery)), ";") + ") AS vigie_q"
}

// sourceColumn is a result column and how it reads.
type sourceColumn struct {
	name  string
	oid   uint32
	typ   string // as format_type spells it
	arrow arrow.DataType
}

// describe returns the result's columns.
func describe(ctx context.Context, conn *pgx.Conn, cfg protocol.Config) ([]sourceColumn, error) {
	rows, err := conn.Query(ctx, "SELECT * FROM "+from(cfg)+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", from(cfg), classify(err))
	}
	fds := append([]pgconn.FieldDescription(nil), rows.FieldDescriptions()...)
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe %s: %w", from(cfg), classify(err))
	}
	cols := make([]sourceColumn, len(fds))
	for i, fd := range fds {
		c := sourceColumn{name: fd.Name, oid: fd.DataTypeOID}
		if err := conn.QueryRow(ctx, "SELECT format_type($1::oid, $2::int)", fd.DataTypeOID, fd.TypeModifier).Scan(&c.typ); err != nil {
			return nil, fmt.Errorf("describe column %q: %w", fd.Name, classify(err))
		}
		c.arrow = arrowType(fd.DataTypeOID, fd.TypeModifier, cfg.String(optNumeric) == numericFloat)
		if c.arrow == nil {
			return nil, configError(optQuery, "column %q is %s, which the source does not read: cast it in a query (%s::text)", fd.Name, c.typ, quote(fd.Name))
		}
		cols[i] = c
	}
	for _, k := range cfg.StringList(optKey) {
		if !slicesContainsName(cols, k) {
			return nil, configError(optKey, "no column %q in the result (columns: %s)", k, columnNames(cols))
		}
	}
	return cols, nil
}

func slicesContainsName(cols []sourceColumn, name string) bool {
	for _, c := range cols {
		if c.name == name {
			return true
		}
	}
	return false
}

func columnNames(cols []sourceColumn) string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = c.name
	}
	return strings.Join(n, ", ")
}

// arrowType is the Arrow type a result column of type oid (modifier mod)
// reads as, nil when none.
func arrowType(oid uint32, mod int32, numericAsFloat bool) arrow.DataType {
	switch oid {
	case pgtype.Int2OID:
		return arrow.PrimitiveTypes.Int16
	case pgtype.Int4OID:
		return arrow.PrimitiveTypes.Int32
	case pgtype.Int8OID:
		return arrow.PrimitiveTypes.Int64
	case pgtype.Float4OID:
		return arrow.PrimitiveTypes.Float32
	case pgtype.Float8OID:
		return arrow.PrimitiveTypes.Float64
	case pgtype.NumericOID:
		if mod >= 4 && !numericAsFloat {
			p, s := int32(((mod-4)>>16)&0xffff), int32((mod-4)&0xffff)
			if p <= 38 && s <= p {
				return &arrow.Decimal128Type{Precision: p, Scale: s}
			}
		}
		return arrow.PrimitiveTypes.Float64
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return arrow.BinaryTypes.String
	case pgtype.BoolOID:
		return arrow.FixedWidthTypes.Boolean
	case pgtype.DateOID:
		return arrow.FixedWidthTypes.Date32
	case pgtype.TimestampOID:
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case pgtype.TimestamptzOID:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	}
	return nil
}

// Schema connects and describes the result.
func (Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	cfg, err := checkSource(cfg)
	if err != nil {
		return nil, err
	}
	conn, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cols, err := describe(ctx, conn, cfg)
	if err != nil {
		return nil, err
	}
	return schemaOf(cols), nil
}

func schemaOf(cols []sourceColumn) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.arrow, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// sourcePosition is the key of the last row delivered, each column as
// PostgreSQL renders it as text.
type sourcePosition struct {
	Key []string `json:"key"`
}

// Read reads the chunks after the resume position, one query each.
func (Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	cfg, err := checkSource(cfg)
	if err != nil {
		return err
	}
	var pos sourcePosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &pos); err != nil {
			return err
		}
	}
	key := cfg.StringList(optKey)
	if pos.Key != nil && len(pos.Key) != len(key) {
		return fmt.Errorf("resume position %s has %d key values, the key has %d columns: %w", cfg.Resume, len(pos.Key), len(key), protocol.ErrConfig)
	}
	batchRows := cfg.BatchRows
	if batchRows <= 0 {
		batchRows = protocol.DefaultBatchRows
	}
	// A chunk is one batch, and a batch holds at most batch_rows rows.
	chunk := int(cfg.Int(optChunkRows))
	if chunk <= 0 || chunk > batchRows {
		chunk = batchRows
	}
	conn, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("begin read: %w", classify(err))
	}
	cols, err := describe(ctx, conn, cfg)
	if err != nil {
		return err
	}
	schema := cfg.Schema
	if schema == nil {
		schema = schemaOf(cols)
	} else if !schema.Equal(schemaOf(cols)) {
		return fmt.Errorf("the result's columns changed since the pipeline was prepared: now %s: %w", schemaOf(cols), protocol.ErrConfig)
	}
	r := &chunkReader{conn: conn, cols: cols, key: key, chunk: chunk, types: pgtype.NewMap(),
		b: array.NewRecordBuilder(mem, schema), what: from(cfg)}
	defer r.b.Release()
	r.prepare(cfg)
	for {
		n, last, err := r.next(ctx, pos.Key)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		pos.Key = last
		p, err := protocol.NewPosition(pos)
		if err != nil {
			return err
		}
		rec := r.b.NewRecordBatch()
		err = out.Emit(ctx, rec, p)
		rec.Release()
		if err != nil {
			return err
		}
		if n < chunk {
			return nil
		}
	}
}

// chunkReader reads one chunk per query.
type chunkReader struct {
	conn              *pgx.Conn
	cols              []sourceColumn
	key               []string
	chunk             int
	types             *pgtype.Map
	b                 *array.RecordBuilder
	what              string
	firstSQL, nextSQL string // SQL of the first chunk and of the ones after a key
	nKey              int
}

func (r *chunkReader) prepare(cfg protocol.Config) {
	keys := make([]string, len(r.key))
	texts := make([]string, len(r.key))
	params := make([]string, len(r.key))
	for i, k := range r.key {
		keys[i] = "vigie_q." + quote(k)
		texts[i] = fmt.Sprintf("(vigie_q.%s)::text AS %s%d", quote(k), keyTextPrefix, i)
		for _, c := range r.cols {
			if c.name == k {
				params[i] = fmt.Sprintf("$%d::text::%s", i+1, c.typ)
			}
		}
	}
	sel := fmt.Sprintf("SELECT vigie_q.*, %s FROM %s", strings.Join(texts, ", "), from(cfg))
	order := fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(keys, ", "), r.chunk+1)
	r.firstSQL = sel + order
	r.nextSQL = fmt.Sprintf("%s WHERE (%s) > (%s)%s", sel, strings.Join(keys, ", "), strings.Join(params, ", "), order)
	r.nKey = len(r.key)
}

// next reads the chunk after key (nil: the first) into the builder and
// returns its row count and last key. One more row than a chunk is asked
// for, to see that the key does not repeat across the chunk's end.
func (r *chunkReader) next(ctx context.Context, after []string) (int, []string, error) {
	sql, args := r.firstSQL, []any(nil)
	if after != nil {
		sql = r.nextSQL
		for _, k := range after {
			args = append(args, k)
		}
	}
	rows, err := r.conn.Query(ctx, sql, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", r.what, classify(err))
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	nc := len(r.cols)
	var last []string
	n := 0
	for rows.Next() {
		raw := rows.RawValues()
		keyText := make([]string, r.nKey)
		for i := range r.nKey {
			if raw[nc+i] == nil {
				return 0, nil, fmt.Errorf("read %s: key column %q is null after key %v: the key must never be null", r.what, r.key[i], last)
			}
			keyText[i] = string(raw[nc+i])
		}
		if n == r.chunk {
			if equalKeys(keyText, last) {
				return 0, nil, fmt.Errorf("read %s: key %v appears twice: the key must be unique, or chunks would skip rows", r.what, last)
			}
			break
		}
		if last != nil && equalKeys(keyText, last) {
			return 0, nil, fmt.Errorf("read %s: key %v appears twice: the key must be unique, or chunks would skip rows", r.what, last)
		}
		for j := range nc {
			if err := r.append(j, fds[j], raw[j]); err != nil {
				return 0, nil, fmt.Errorf("read %s: key %v: column %q: %w", r.what, keyText, r.cols[j].name, err)
			}
		}
		last = keyText
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", r.what, classify(err))
	}
	return n, last, nil
}

func equalKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// append decodes one value into field j's builder.
func (r *chunkReader) append(j int, fd pgconn.FieldDescription, raw []byte) error {
	fb := r.b.Field(j)
	if raw == nil {
		fb.AppendNull()
		return nil
	}
	scan := func(dst any) error { return r.types.Scan(fd.DataTypeOID, fd.Format, raw, dst) }
	switch b := fb.(type) {
	case *array.Int16Builder:
		var v int16
		if err := scan(&v); err != nil {
			return err
		}
		b.Append(v)
	case *array.Int32Builder:
		var v int32
		if err := scan(&v); err != nil {
			return err
		}
		b.Append(v)
	case *array.Int64Builder:
		var v int64
		if err := scan(&v); err != nil {
			return err
		}
		b.Append(v)
	case *array.Float32Builder:
		var v float32
		if err := scan(&v); err != nil {
			return err
		}
		b.Append(v)
	case *array.Float64Builder:
		var v float64
		if err := scan(&v); err != nil {
			return err
		}
		b.Append(v)
	case *array.StringBuilder:
		var v string
		if err := scan(&v); err != nil {
			return err
		}
		b.Append(v)
	case *array.BooleanBuilder:
		var v bool
		if err := scan(&v); err != nil {
			return err
		}
		b.Append(v)
	case *array.Date32Builder:
		var v pgtype.Date
		if err := scan(&v); err != nil {
			return err
		}
		if v.InfinityModifier != pgtype.Finite {
			return errors.New("infinite date")
		}
		b.Append(arrow.Date32FromTime(v.Time))
	case *array.TimestampBuilder:
		var v pgtype.Timestamptz
		if fd.DataTypeOID == pgtype.TimestampOID {
			var ts pgtype.Timestamp
			if err := scan(&ts); err != nil {
				return err
			}
			v = pgtype.Timestamptz(ts)
		} else if err := scan(&v); err != nil {
			return err
		}
		if v.InfinityModifier != pgtype.Finite {
			return errors.New("infinite timestamp")
		}
		b.Append(arrow.Timestamp(v.Time.UnixMicro()))
	case *array.Decimal128Builder:
		var v pgtype.Numeric
		if err := scan(&v); err != nil {
			return err
		}
		if v.NaN || v.InfinityModifier != pgtype.Finite {
			return errors.New("NaN or infinite numeric")
		}
		d, err := toDecimal(v, b.Type().(*arrow.Decimal128Type))
		if err != nil {
			return err
		}
		b.Append(d)
	default:
		return fmt.Errorf("no reader for %s", fb.Type())
	}
	return nil
}

// toDecimal rescales n to t's scale.
func toDecimal(n pgtype.Numeric, t *arrow.Decimal128Type) (decimal128.Num, error) {
	v := new(big.Int).Set(n.Int)
	shift := int64(n.Exp) + int64(t.Scale)
	ten := big.NewInt(10)
	if shift > 0 {
		v.Mul(v, new(big.Int).Exp(ten, big.NewInt(shift), nil))
	} else if shift < 0 {
		q, m := new(big.Int).QuoRem(v, new(big.Int).Exp(ten, big.NewInt(-shift), nil), new(big.Int))
		if m.Sign() != 0 {
			return decimal128.Num{}, fmt.Errorf("value has more than %d decimals", t.Scale)
		}
		v = q
	}
	d := decimal128.FromBigInt(v)
	if !d.FitsInPrecision(t.Precision) {
		return decimal128.Num{}, fmt.Errorf("value does not fit in decimal(%d,%d)", t.Precision, t.Scale)
	}
	return d, nil
}
