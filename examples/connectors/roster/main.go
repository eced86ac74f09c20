// Command vigie-connector-roster is an example third-party Vigie source: a
// deterministic roster generator (students of one school with their class
// and birth year), written with connectors/sdk. Build it into a plugin
// directory and use connector = "roster" in a pipeline:
//
//	go build -o plugins/vigie-connector-roster ./examples/connectors/roster
package main

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

var spec = protocol.Spec{
	Name:    "roster",
	Version: "1.0.0",
	Doc: `Connector "roster" (source, example plugin): generates a deterministic
roster of one school: student_id, school, class and birth_year. The same
options always give the same rows, so it serves tests and demos.`,
	Options: []protocol.Option{
		{Name: "students", Type: protocol.TypeInt, Default: int64(1000), Doc: "number of students"},
		{Name: "school", Type: protocol.TypeString, Default: "0750001A", Doc: "school code (UAI) of every row"},
		{Name: "seed", Type: protocol.TypeInt, Default: int64(1), Doc: "changes classes and birth years"},
	},
}

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "student_id", Type: arrow.BinaryTypes.String},
	{Name: "school", Type: arrow.BinaryTypes.String},
	{Name: "class", Type: arrow.BinaryTypes.String},
	{Name: "birth_year", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// position is where a read stands: the next student to generate.
type position struct {
	Next int64 `json:"next"`
}

func schemaOf(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	if n := cfg.Int("students"); n < 0 {
		return nil, fmt.Errorf("connector \"roster\": option \"students\": expected at least 0, got %d: %w", n, protocol.ErrConfig)
	}
	return schema, nil
}

func read(ctx context.Context, cfg protocol.Config, r *sdk.Reader) error {
	n, seed := cfg.Int("students"), uint64(cfg.Int("seed"))
	var from position
	if _, err := r.Resume(&from); err != nil {
		return err
	}
	b := r.Builder()
	for i := from.Next; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		h := mix(uint64(i) ^ seed)
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("S%06d", i+1))
		b.Field(1).(*array.StringBuilder).Append(cfg.String("school"))
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("%d%c", 6+h%4, 'A'+rune(h>>8%4)))
		b.Field(3).(*array.Int64Builder).Append(2010 + int64(h>>16%6))
		if err := r.Next(ctx, position{Next: i + 1}); err != nil {
			return err
		}
	}
	return r.Flush(ctx, position{Next: n})
}

// mix is splitmix64's finaliser: a cheap deterministic hash.
func mix(x uint64) uint64 {
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func main() {
	sdk.Serve(sdk.NewSource(spec, schemaOf, read))
}
