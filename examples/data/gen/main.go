// Command gen writes the synthetic academy of examples/data with the
// generator of academy (the library behind `vigie gen`), at a small
// size, plus attendance_dirty.csv, a few rows with deliberate faults for
// the dead-letter path. The output is deterministic (fixed seed), so the
// committed files can be regenerated and compared. It is the same as
//
//	vigie gen --students 600 --schools 3 --seed 2025 --year 2025 --zone C --format csv --out examples/data
//	vigie gen --students 40 --schools 3 --seed 2025 --year 2025 --zone C --format oneroster,xapi,pronote --out examples/data/bundle
//
// followed by attendance_dirty.csv.
//
//	go run ./examples/data/gen            # writes next to this folder
//	go run ./examples/data/gen -out DIR
package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vigie-edu/vigie/synth/academy"
)

func main() {
	out := flag.String("out", defaultDir(), "folder to write the files to")
	flag.Parse()
	if err := generate(*out); err != nil {
		log.Fatal(err)
	}
}

// defaultDir is examples/data, the parent of this source file's folder.
func defaultDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Dir(filepath.Dir(file))
}

// Options of the two runs (see the package comment).
func options(dir string) []academy.Options {
	base := academy.Options{Dir: dir, Students: 600, Schools: 3, Seed: 2025, Year: 2025, Zone: "C",
		Formats: []string{academy.FormatCSV}, Profile: academy.DefaultProfile()}
	bundle := base
	bundle.Dir, bundle.Students = filepath.Join(dir, "bundle"), 40
	bundle.Formats = []string{academy.FormatOneRoster, academy.FormatXAPI, academy.FormatPronote}
	return []academy.Options{base, bundle}
}

// generate writes every file to dir.
func generate(dir string) error {
	for _, opt := range options(dir) {
		if _, err := academy.Generate(context.Background(), opt); err != nil {
			return err
		}
	}
	f, err := os.Open(filepath.Join(dir, "attendance.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	var rows [][]string
	for len(rows) < 13 {
		rec, err := r.Read()
		if err != nil {
			return fmt.Errorf("attendance.csv: %w", err)
		}
		rows = append(rows, rec)
	}
	return writeCSV(filepath.Join(dir, "attendance_dirty.csv"), dirty(rows[0], rows[1:13]))
}

// dirty returns good rows of attendance with faulty rows among them. The
// faults and their lines are listed in README.md.
func dirty(header []string, good [][]string) [][]string {
	bad := func(row []string, col int, v string) []string {
		row = append([]string(nil), row...)
		row[col] = v
		return row
	}
	return [][]string{
		header,                 // line 1
		good[0],                // 2
		good[1],                // 3
		bad(good[2], 4, "abc"), // 4: absent_half_days is not a number
		good[3],                // 5
		good[4][:5],            // 6: a field is missing
		bad(good[5], 1, "note:\nclass changed in October"), // 7-8: quoted, multi-line: fine
		good[6],                 // 9
		bad(good[7], 3, "35.5"), // 10: half_days is not an integer
		append(append([]string(nil), good[8]...), "extra"), // 11: one field too many
		good[9],                // 12
		bad(good[10], 5, "NA"), // 13: a null, not an error
		good[11],               // 14
	}
}

// writeCSV writes rows to path.
func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := w.WriteAll(rows); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
