package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/cobra"

	"github.com/vigie-edu/vigie/evaluation"
)

// newEvalCmd is `vigie eval`: it measures (package evaluation) the quality
// of early-warning outputs, against the synthetic academy's ground truth (--alerts,
// --truth), or as a binary classifier of a label (--scores, --label).
func newEvalCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval --alerts FILE --truth ground_truth.csv | --scores FILE --label EXPR",
		Short: "Measure early-warning quality against ground truth or a label",
		Long: `Academy mode (--alerts, --truth): precision, recall, median lead time and
false alerts per 1,000 students per month of an early_warning output
against vigie gen's ground truth. Binary mode (--scores, --label): ROC-AUC,
precision, recall and accuracy of a score against a label (the real-data
evaluations of docs/indicators.md).`,
		Example: `  vigie eval --alerts examples/pipelines/out/term_xapi_alerts.parquet --truth academy/ground_truth.csv
  vigie eval --scores examples/pipelines/out/uci_risk.csv --label 'G3<10'`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	alerts := fs.String("alerts", "", "alerts output of the early_warning rule (Parquet or CSV): student_id, first_alert, alert_history")
	truth := fs.String("truth", "", "ground_truth.csv (or .parquet) of vigie gen")
	months := fs.Float64("months", 10, "months of school the run covers, for false alerts per 1,000 students per month")
	grace := fs.Int("grace", 30, "days after a recovering drift's end during which an alert still counts as true")
	scores := fs.String("scores", "", "binary mode: a table (Parquet or CSV) with a score column and the label's column")
	scoreCol := fs.String("score", "risk", "binary mode: score column (higher means at risk; null counts as 0)")
	label := fs.String("label", "", `binary mode: what is positive, "COL=A|B" or "COL<NUM" (also <=, >, >=)`)
	exclude := fs.String("exclude", "", `binary mode: rows to leave out, same syntax as --label`)
	threshold := fs.Float64("threshold", 0.5, "binary mode: score from which a row is predicted positive")
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	cmd.RunE = do(func(*cobra.Command, []string) int {
		var (
			res any
			err error
		)
		switch {
		case *alerts != "" && *truth != "" && *scores == "":
			res, err = evaluation.OfAlerts(memory.NewGoAllocator(), *alerts, *truth, *months, *grace)
		case *scores != "" && *label != "" && *alerts == "":
			res, err = evaluation.OfScores(memory.NewGoAllocator(), *scores, *scoreCol, *label, *exclude, *threshold)
		default:
			fmt.Fprintln(stderr, "vigie eval: give --alerts and --truth, or --scores and --label")
			return exitUsage
		}
		if err != nil {
			fmt.Fprintf(stderr, "vigie eval: %v\n", err)
			return exitFailed
		}
		return printEval(res, *asJSON, stdout, stderr)
	})
	return cmd
}

func printEval(res any, asJSON bool, stdout, stderr io.Writer) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "vigie eval: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprint(stdout, res)
	return exitOK
}
