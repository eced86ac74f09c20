package pipelines_test

import (
	"path/filepath"
	"testing"

	"github.com/vigie-edu/vigie/engine/pipeline/pipelinetest"
)

// TestRealdataOULAD reads the OULAD subset in examples/realdata, where "?"
// means missing, and checks row counts, types and that every "?" became a
// null (and nothing else did).
func TestRealdataOULAD(t *testing.T) {
	toml := sandbox(t, "realdata_oulad.toml", "realdata/oulad")
	dir := filepath.Dir(toml)
	sum := pipelinetest.Run(t, toml)
	for _, tt := range []struct {
		stage, file string
		rows        int
		types       map[string]string
		nulls       map[string]int // "?" in the file, counted by hand with grep
	}{
		{"student_info", "student_info.parquet", 3000,
			map[string]string{"id_student": "int64", "imd_band": "utf8", "num_of_prev_attempts": "int64", "studied_credits": "int64", "final_result": "utf8"},
			map[string]int{"imd_band": 46}},
		{"student_assessment", "student_assessment.parquet", 5000,
			map[string]string{"id_student": "int64", "id_assessment": "int64", "date_submitted": "int64", "is_banked": "bool", "score": "int64"},
			map[string]int{"score": 9}},
		{"assessments", "assessments.parquet", 206,
			map[string]string{"id_assessment": "int64", "date": "int64", "weight": "float64"},
			map[string]int{"date": 11}},
		{"courses", "courses.parquet", 22,
			map[string]string{"module_presentation_length": "int64"}, nil},
	} {
		t.Run(tt.stage, func(t *testing.T) {
			st, _ := sum.Stage(tt.stage)
			if st.RowsOut != int64(tt.rows) || st.DeadLettered != 0 {
				t.Errorf("%d rows out, %d dead-lettered; want %d and 0", st.RowsOut, st.DeadLettered, tt.rows)
			}
			tb := csvxReadParquet(t, filepath.Join(dir, "out", tt.file))
			if tb.rows() != tt.rows {
				t.Errorf("parquet has %d rows, want %d", tb.rows(), tt.rows)
			}
			for col, typ := range tt.types {
				if got := tb.typeOf(t, col); got != typ {
					t.Errorf("column %s is %s, want %s", col, got, typ)
				}
			}
			for _, f := range tb.schema.Fields() {
				if got, want := tb.nulls[f.Name], tt.nulls[f.Name]; got != want {
					t.Errorf("column %s has %d nulls, want %d", f.Name, got, want)
				}
			}
		})
	}
}
