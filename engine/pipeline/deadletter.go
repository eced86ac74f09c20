package pipeline

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

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

	// For retention in continuous runs (expire): the file's size, its
	// header's, and where each write's rows start and when they came.
	mu     sync.Mutex
	n      int64
	header int64
	marks  []deadLetterMark
	closed bool
}

// deadLetterMark is where the rows of one write start in the file.
type deadLetterMark struct {
	at   time.Time
	off  int64
	rows int
}

// counter counts what is written to the file.
type counter struct {
	w io.Writer
	n *int64
}

func (c counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	*c.n += int64(n)
	return n, err
}

func newDeadLetterFile(path string) *deadLetterFile { return &deadLetterFile{path: path} }

func (d *deadLetterFile) WriteDeadLetters(rows []stream.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
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
		d.f, d.w = f, csv.NewWriter(counter{f, &d.n})
		d.w.Write([]string{"stage", "origin", "line", "column", "reason", "raw"})
		d.w.Flush()
		d.header = d.n
	}
	d.marks = append(d.marks, deadLetterMark{at: time.Now(), off: d.n, rows: len(rows)})
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

// expire drops the rows written before cutoff from the file being
// written (a continuous run's dead letters, which are published only when
// the run ends), and returns how many it dropped.
func (d *deadLetterFile) expire(cutoff time.Time) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, dropped := 0, 0
	for k < len(d.marks) && d.marks[k].at.Before(cutoff) {
		dropped += d.marks[k].rows
		k++
	}
	if d.f == nil || d.err != nil || d.closed || k == 0 {
		return 0, nil
	}
	cut := d.n
	if k < len(d.marks) {
		cut = d.marks[k].off
	}
	f, err := os.CreateTemp(filepath.Dir(d.path), "."+filepath.Base(d.path)+".*")
	if err != nil {
		return 0, fmt.Errorf("dead letter retention: %w", err)
	}
	head := io.NewSectionReader(d.f, 0, d.header)
	rest := io.NewSectionReader(d.f, cut, d.n-cut)
	if _, err := io.Copy(f, io.MultiReader(head, rest)); err != nil {
		f.Close()
		os.Remove(f.Name())
		return 0, fmt.Errorf("dead letter retention: %w", err)
	}
	old := d.f
	d.f, d.n = f, d.header+(d.n-cut)
	d.w = csv.NewWriter(counter{f, &d.n})
	marks := d.marks[k:]
	for i := range marks {
		marks[i].off -= cut - d.header
	}
	d.marks = append(d.marks[:0], marks...)
	old.Close()
	os.Remove(old.Name())
	return dropped, nil
}

// Close publishes the file, or removes a stale one when nothing was rejected.
func (d *deadLetterFile) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
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
