package pronote_test

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/conformance"
	"github.com/vigie-edu/vigie/connectors/pronote"
	"github.com/vigie-edu/vigie/connectors/protocol"
)

type printer struct{}

func (printer) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	for _, r := range conformance.Rows(rec) {
		fmt.Println(r)
	}
	return nil
}

func (printer) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	for _, d := range rows {
		fmt.Println("dead letter:", d)
	}
	return nil
}

// Reading a Windows-1252 export of marks: marks normalised to /20, codes
// such as "Abs" in mark_status, faulty rows as dead letters.
func ExampleSource() {
	cfg := protocol.Config{Connector: pronote.Name, Options: map[string]any{
		"path": "testdata/notes_variants.csv", "kind": "notes", "on_error": "skip",
	}}
	if err := (pronote.Source{}).Read(context.Background(), cfg, memory.NewGoAllocator(), printer{}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// S1|Durand|Zoé|3eB|MATHÉMATIQUES|Trimestre 1|2025-10-05|12.5|ok|12.5|20|1|(null)
	// S1|Durand|Zoé|3eB|FRANÇAIS|Trimestre 1|2025-10-05|7.5|ok|15|40|2|(null)
	// S2|Lefèvre|Noé|3eB|ANGLAIS LV1|Trimestre 1|2025-10-06|(null)|absent|(null)|20|1|(null)
	// S2|Lefèvre|Noé|3eB|EPS|Trimestre 1|2025-10-06|(null)|unfit|(null)|20|1|(null)
	// S3|Martin|Léa|3eB|SVT|Trimestre 1|2025-10-07|15|ok|7.5|10|0.5|(null)
	// S3|Martin|Léa|3eB|SVT|Trimestre 1|2025-10-07|(null)|not_graded|(null)|20|1|(null)
	// S3|Martin|Léa|3eB|PHYSIQUE-CHIMIE|Trimestre 1|2025-10-07|(null)|exempt|(null)|20|1|(null)
	// S5|Roux|Inès|3eB|ARTS PLASTIQUES|Trimestre 1|2025-10-09|(null)|not_submitted|(null)|20|1|(null)
	// S5|Roux|Inès|3eB|ARTS PLASTIQUES|Trimestre 1|2025-10-09|(null)|missing|(null)|20|1|(null)
	// S5|Roux|Inès|3eB|MATHÉMATIQUES|Trimestre 1|2025-10-10|16.6|ok|33.2|40|1|(null)
}
