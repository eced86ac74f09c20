// Package builtin gathers the connectors that ship inside the vigie binary,
// which serves them when it re-executes itself as a connector plugin.
package builtin

import (
	"github.com/vigie-edu/vigie/connectors/csv"
	"github.com/vigie-edu/vigie/connectors/jsonl"
	"github.com/vigie-edu/vigie/connectors/oneroster"
	"github.com/vigie-edu/vigie/connectors/parquet"
	"github.com/vigie-edu/vigie/connectors/pronote"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/xapi"
)

// Registry returns the built-in connectors: the "csv" source and the
// "csv_file" and "parquet" sinks.
func Registry() *protocol.Registry {
	return protocol.NewRegistry(csv.Source{}, csv.Sink{}, parquet.Sink{},
		parquet.Source{},
		jsonl.Source{},
		xapi.FileSource{}, xapi.HTTPSource{},
		pronote.Source{}, oneroster.Source{},
	)
}
