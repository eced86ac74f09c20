package webhook_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/webhook"
)

// TestSinkConformance runs the connectors' acceptance suite, in process
// and through the plugin transport. The receiver acknowledges everything;
// reading back renders each acknowledged change once (the receiver keys
// on webhook-id, as an idempotent receiver does), in id order, then
// forgets them and removes the outbox, so that each case starts afresh.
func TestSinkConformance(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "change", Type: arrow.BinaryTypes.String},
		{Name: "reason_codes", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	rc := newReceiver(t, []string{secretNew}, nil)
	rc.allowDuplicates = true // a request in flight when the writer is abandoned may be sent again
	opts := options(t, rc.url(), map[string]any{"id_columns": []any{"id"}})
	outbox := opts["outbox"].(string)
	readBack := func(t *testing.T) []string {
		got := rc.check()
		type row struct {
			id   int64
			text string
		}
		var rows []row
		for _, body := range got {
			var ev struct {
				Data struct {
					ID     int64   `json:"id"`
					Change string  `json:"change"`
					Codes  *string `json:"reason_codes"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(body), &ev); err != nil {
				t.Fatal(err)
			}
			codes := "(null)"
			if ev.Data.Codes != nil {
				codes = *ev.Data.Codes
			}
			rows = append(rows, row{ev.Data.ID, fmt.Sprintf("%d|%s|%s", ev.Data.ID, ev.Data.Change, codes)})
		}
		slices.SortFunc(rows, func(a, b row) int { return int(a.id - b.id) })
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = r.text
		}
		rc.reset()
		if err := os.RemoveAll(outbox); err != nil {
			t.Fatal(err)
		}
		return out
	}
	c := conformance.SinkCase{
		Options: opts,
		Schema:  schema,
		Batches: []string{
			`[{"id": 1, "change": "opened", "reason_codes": "ABS"}, {"id": 2, "change": "opened", "reason_codes": null}]`,
			`[{"id": 3, "change": "updated", "reason_codes": "ABS;GRD"}]`,
			`[{"id": 4, "change": "cleared", "reason_codes": "GRD"}, {"id": 5, "change": "opened", "reason_codes": "PLT"}, {"id": 6, "change": "opened", "reason_codes": null}]`,
		},
		ReadBack: readBack,
		Bad: []conformance.BadCase{
			{Options: map[string]any{"url": rc.url(), "outbox": outbox, "secret_env": secretNew}, Want: "never the secret itself"},
			{Options: map[string]any{"url": "mailto:x@y", "outbox": outbox, "secret_env": "VIGIE_TEST_WEBHOOK_SECRET"}, Want: "not an http or https URL"},
			{Options: map[string]any{"url": rc.url(), "outbox": outbox}, Want: "name the environment variable"},
			{Options: map[string]any{"url": rc.url(), "outbox": filepath.Join(outbox, "x"), "secret_env": "VIGIE_TEST_WEBHOOK_SECRET", "batch": int64(0)}, Want: "out of range"},
		},
	}
	t.Run("in-process", func(t *testing.T) { conformance.TestSink(t, webhook.Sink{}, c) })
	t.Run("over gRPC", func(t *testing.T) {
		conformance.TestSink(t, conformance.ThroughPlugin(t, webhook.Sink{}).(protocol.Sink), c)
	})
}
