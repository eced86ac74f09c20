// Package builtin gathers the connectors that ship inside the vigie binary,
// which serves them when it re-executes itself as a connector plugin.
package builtin

import (
	"github.com/vigie-edu/vigie/connectors/csv"
	"github.com/vigie-edu/vigie/connectors/jsonl"
	"github.com/vigie-edu/vigie/connectors/kafka"
	"github.com/vigie-edu/vigie/connectors/oneroster"
	"github.com/vigie-edu/vigie/connectors/parquet"
	"github.com/vigie-edu/vigie/connectors/postgres"
	"github.com/vigie-edu/vigie/connectors/pronote"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/replay"
	"github.com/vigie-edu/vigie/connectors/webhook"
	"github.com/vigie-edu/vigie/connectors/xapi"
)

// Registry returns the built-in connectors: sources csv, parquet_file,
// jsonl, xapi (files), xapi_http (an xAPI endpoint), pronote, oneroster and
// kafka, postgres_query and replay (a vigie gen academy played in event
// time); sinks csv_file, parquet, kafka_topic, postgres, webhook and
// jsonl_file.
func Registry() *protocol.Registry {
	return protocol.NewRegistry(csv.Source{}, csv.Sink{}, parquet.Sink{},
		parquet.Source{},
		jsonl.Source{}, jsonl.Sink{},
		xapi.FileSource{}, xapi.HTTPSource{},
		pronote.Source{}, oneroster.Source{},
		kafka.Source{}, kafka.Sink{},
		postgres.Source{}, postgres.Sink{},
		webhook.Sink{},
		replay.Source{},
	)
}
