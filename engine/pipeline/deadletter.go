package pipeline

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vigie-edu/vigie/engine/stream"
)

// deadLetterFile writes rejected rows as CSV (stage, origin, line, column,
// reason, raw). The file is written under a temporary name and renamed when
// the run ends, so the file at the path always belongs to the latest run;
// a run without rejected rows removes the previous run's file.
type deadLetterFile struct {
	path string
	f    *os.File
	w    *csv.Writer
	err  error
}

func newDeadLetterFile(path string) *deadLetterFile { return &deadLetterFile{path: path} }

func (d *deadLetterFile) WriteDeadLetters(rows []stream.DeadLetter) error {
	if d.err != nil {
		return d.err
	}
	if d.f == nil {
		if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
			d.err = fmt.Errorf("dead letter output: %w", err)
			return d.err
		}
		f, err := os.CreateTemp(filepath.Dir(d.path), "."+filepath.Base(d.path)+".*")
		if err != nil {
			d.err = fmt.Errorf("dead letter output: %w", err)
			return d.err
		}
		d.f, d.w = f, csv.NewWriter(f)
		d.w.Write([]string{"stage", "origin", "line", "column", "reason", "raw"})
	}
	for _, r := range rows {
		line := ""
		if r.Line > 0 {
			line = strconv.FormatInt(r.Line, 10)
		}
		d.w.Write([]string{r.Stage, r.Origin, line, r.Column, r.Reason, r.Raw})
	}
	d.w.Flush()
	if err := d.w.Error(); err != nil {
		d.err = fmt.Errorf("dead letter output %s: %w", d.path, err)
	}
	return d.err
}

// Close publishes the file, or removes a stale one when nothing was rejected.
func (d *deadLetterFile) Close() error {
	if d.f == nil {
		if err := os.Remove(d.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove stale dead letter output: %w", err)
		}
		return nil
	}
	if err := d.f.Sync(); err != nil && d.err == nil {
		d.err = err
	}
	if err := d.f.Close(); err != nil && d.err == nil {
		d.err = err
	}
	if d.err != nil {
		os.Remove(d.f.Name())
		return d.err
	}
	if err := os.Rename(d.f.Name(), d.path); err != nil {
		return fmt.Errorf("dead letter output: %w", err)
	}
	return nil
}
