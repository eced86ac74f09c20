package pipeline

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

	// In a run with checkpoints: rows counts the rows in the file, and
	// stale the files expire replaced, kept until a checkpoint that does
	// not name them committed (the last one committed may).
	checkpointed bool
	rows         int64
	stale        []string
}

// deadLetterPos is where a checkpoint leaves the dead letters of a run
// with checkpoints: the first Size bytes (Rows rows) of the temporary file
// Temp. A restart from the checkpoint truncates the file there and goes
// on writing it, so that the rows it replays are not dead-lettered twice
// (docs/design/streaming.md, section 8).
type deadLetterPos struct {
	Temp string `json:"temp"`
	Size int64  `json:"size"`
	Rows int64  `json:"rows"`
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

// deadLetterHeader is the first line of the file.
var deadLetterHeader = []string{"stage", "origin", "line", "column", "reason", "raw"}

// isTemp reports whether name (a base name) is one of the temporary files
// of the dead letter file at path (os.CreateTemp's random digits).
func isTemp(path, name string) bool {
	rest, ok := strings.CutPrefix(name, "."+filepath.Base(path)+".")
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

// resume starts a run with checkpoints from pos, the dead letters its
// last committed checkpoint recorded (nil: none): the file is cut to
// pos.Size and written on. Temporary files of killed runs are removed. A
// file that is gone was published when its run ended: the published file
// is copied and written on (a continuous pipeline's dead letters go on
// across its runs, as its outputs do).
func (d *deadLetterFile) resume(pos *deadLetterPos) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkpointed = true
	keep := ""
	if pos != nil && filepath.Clean(filepath.Dir(pos.Temp)) == filepath.Clean(filepath.Dir(d.path)) && isTemp(d.path, filepath.Base(pos.Temp)) {
		keep = filepath.Join(filepath.Dir(d.path), filepath.Base(pos.Temp))
	}
	if entries, err := os.ReadDir(filepath.Dir(d.path)); err == nil {
		for _, e := range entries {
			name := filepath.Join(filepath.Dir(d.path), e.Name())
			if isTemp(d.path, e.Name()) && name != keep {
				os.Remove(name)
			}
		}
	}
	if keep == "" {
		return nil
	}
	f, err := os.OpenFile(keep, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		// Published when the run ended (or a kill came between the publish
		// and the exit): its copy goes on.
		if f, err = d.copyPublished(pos.Size); f == nil && err == nil {
			return nil
		}
	}
	if err == nil {
		err = f.Truncate(pos.Size)
		if err == nil {
			_, err = f.Seek(pos.Size, io.SeekStart)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("resume the dead letters from %s: %w", keep, err)
	}
	var head bytes.Buffer
	hw := csv.NewWriter(&head)
	hw.Write(deadLetterHeader)
	hw.Flush()
	d.f, d.n, d.rows = f, pos.Size, pos.Rows
	d.w = csv.NewWriter(counter{f, &d.n})
	d.header = int64(head.Len())
	if pos.Rows > 0 {
		d.marks = append(d.marks, deadLetterMark{at: time.Now(), off: d.header, rows: int(pos.Rows)})
	}
	return nil
}

// copyPublished copies the first size bytes of the published file into a
// new temporary file, positioned at their end; nil when there is no such
// file or it is shorter (another run's: the run writes a new one).
func (d *deadLetterFile) copyPublished(size int64) (*os.File, error) {
	src, err := os.Open(d.path)
	if err != nil {
		return nil, nil
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil || fi.Size() < size {
		return nil, nil
	}
	f, err := os.CreateTemp(filepath.Dir(d.path), "."+filepath.Base(d.path)+".*")
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(f, src, size); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// checkpoint makes the dead letters written so far durable and returns
// where they end, nil when there are none.
func (d *deadLetterFile) checkpoint() (*deadLetterPos, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	if d.f == nil {
		return nil, nil
	}
	if err := d.f.Sync(); err != nil {
		return nil, fmt.Errorf("dead letter output: %w", err)
	}
	return &deadLetterPos{Temp: d.f.Name(), Size: d.n, Rows: d.rows}, nil
}

// committed hears that the checkpoint recording pos committed: the files
// expire replaced are no longer needed, but the one pos names.
func (d *deadLetterFile) committed(pos *deadLetterPos) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keep := d.stale[:0]
	for _, name := range d.stale {
		if pos != nil && name == pos.Temp {
			keep = append(keep, name)
			continue
		}
		os.Remove(name)
	}
	d.stale = keep
}

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
		d.w.Write(deadLetterHeader)
		d.w.Flush()
		d.header = d.n
	}
	d.rows += int64(len(rows))
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
	d.rows -= int64(dropped)
	d.w = csv.NewWriter(counter{f, &d.n})
	marks := d.marks[k:]
	for i := range marks {
		marks[i].off -= cut - d.header
	}
	d.marks = append(d.marks[:0], marks...)
	old.Close()
	if d.checkpointed {
		// The last checkpoint may name it: removed once one that does not
		// committed (committed).
		d.stale = append(d.stale, old.Name())
	} else {
		os.Remove(old.Name())
	}
	return dropped, nil
}

// suspend closes the file of a run with checkpoints that failed, without
// publishing it: the run started again resumes it from its last
// checkpoint.
func (d *deadLetterFile) suspend() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.f == nil {
		return nil
	}
	return errors.Join(d.f.Sync(), d.f.Close())
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
	for _, name := range d.stale {
		os.Remove(name)
	}
	d.stale = nil
	return nil
}
