package pipelines_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
	"github.com/vigie-edu/vigie/internal/readback"
)

// TestParquet reads two Parquet files through a glob with a projection
// (parquet.toml) and checks the CSV written.
func TestParquet(t *testing.T) {
	toml := sandbox(t, "parquet.toml", "pipelines/testdata/parquet")
	sum := pipelinetest.Run(t, toml)
	st, _ := sum.Stage("marks")
	// 12 students x 3 subjects x 2 terms, in row groups of 10 read in
	// batches of at most 8 rows (a batch never spans row groups): per file,
	// row groups of 10, 10, 10 and 6 rows read as 8+2, 8+2, 8+2 and 6.
	if st.RowsOut != 72 || st.DeadLettered != 0 || st.Batches != 14 {
		t.Errorf("marks: %d rows, %d dead letters, %d batches; want 72, 0, 14", st.RowsOut, st.DeadLettered, st.Batches)
	}
	recs := readback.CSV(t, filepath.Join(filepath.Dir(toml), "out", "parquet_marks.csv"))
	if got := strings.Join(recs[0], ","); got != "student_id,period,mark" {
		t.Errorf("header %s: the projection is not applied", got)
	}
	if len(recs) != 73 {
		t.Fatalf("%d records", len(recs))
	}
	// First rows of term 1 (a null mark), first row of term 2.
	for i, want := range map[int]string{1: "S0001,1,8", 2: "S0001,1,", 3: "S0001,1,13", 37: "S0001,2,9.5", 35: "S0012,1,"} {
		if got := strings.Join(recs[i], ","); got != want {
			t.Errorf("record %d = %s, want %s", i, got, want)
		}
	}
}
