// Package atomicfile writes an output file so that it appears whole or not at
// all: data goes to a temporary file in the destination folder, which is
// renamed over the destination only when the write is committed. It is shared
// by the built-in file sinks (csv_file, parquet).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Mode is the permission of a committed file.
const Mode os.FileMode = 0o644

// PrepareDir creates the folder that will hold path, with its parents, and
// checks that a file can be created in it. It is what a file sink's Validate
// calls.
func PrepareDir(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create folder for %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("output %s is a folder, not a file", path)
	}
	f, err := os.CreateTemp(dir, ".vigie-check-*")
	if err != nil {
		return fmt.Errorf("folder %s is not writable: %w", dir, err)
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}

// File is an output file being written. Write to it, then Commit or Abort
// exactly once; further calls to either are no-ops.
type File struct {
	*os.File
	path  string
	owner string
	done  bool
	// positioned is set once a position in the file was handed out
	// (Checkpoint, or Resume from one): a checkpoint may refer to it, so
	// Abort leaves the file for the writer that resumes from it (or, if
	// none does, for Sweep).
	positioned bool
}

// Owner names the writer of an output across the processes that take
// turns writing it (a sink stage whose plugin crashed and was started
// again): the pipeline and the stage, reduced to letters, digits, '_' and
// '.'. It is part of the temporary files' names, so that one of them can
// tell which leftovers are its own (Sweep). Empty when both are.
func Owner(pipeline, stage string) string {
	if pipeline == "" && stage == "" {
		return ""
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, pipeline+"."+stage)
}

// tempPrefix is the start of the names of path's temporary files, of
// owner's when owner is set.
func tempPrefix(path, owner string) string {
	p := "." + filepath.Base(path) + ".tmp-"
	if owner != "" {
		p += owner + "-"
	}
	return p
}

// Create starts writing path: it creates the folder if needed and a
// temporary file next to path, named after owner (see Owner; may be
// empty).
func Create(path, owner string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create folder for %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), tempPrefix(path, owner)+"*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	return &File{File: f, path: path, owner: owner}, nil
}

// Sweep removes owner's temporary files for path except keep: those of
// its writers that died (a process killed before it committed leaves its
// file behind). A writer calls it when it starts, keeping only the file
// it resumes from, if any; Commit calls it too. Nothing happens without an
// owner: files of other writers are never touched.
func Sweep(path, owner, keep string) {
	if owner == "" {
		return
	}
	prefix := tempPrefix(path, owner)
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
			continue // another owner's, or not a temporary file
		}
		if name := filepath.Join(filepath.Dir(path), e.Name()); name != keep {
			os.Remove(name)
		}
	}
}

// Path returns the destination path.
func (f *File) Path() string { return f.path }

// Commit makes the written data durable and renames the temporary file over
// the destination. On failure the temporary file is removed and the
// destination is left as it was.
func (f *File) Commit() error {
	if f.done {
		return nil
	}
	f.done = true
	tmp := f.Name()
	err := f.Sync()
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Chmod(tmp, Mode)
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	syncDir(filepath.Dir(f.path))
	Sweep(f.path, f.owner, "")
	return nil
}

// Abort closes and removes the temporary file; the destination is left as
// it was. A file a position was handed out for (Checkpoint, Resume) is
// closed but left in place: a committed checkpoint may name it, and the
// writer restarted from that checkpoint resumes from it. Removing it would
// turn a crash into an output that can never be resumed (the engine killed,
// its plugin's stream broken, the sink aborted before the plugin died).
// The next writer of the stage sweeps it if it does not resume from it.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	tmp := f.Name()
	f.Close()
	if f.positioned {
		return nil
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("abort %s: %w", f.path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable where the platform allows it; it is
// best effort.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}

// Resume reopens tmp, the temporary file of an earlier Create for path
// whose writer stopped (its process died), keeps its first size bytes and
// positions the file at their end, so that writing continues as if nothing
// had been written after them. tmp must be a temporary file of path
// created for owner (same folder, name from Create): a position cannot
// point elsewhere.
func Resume(path, owner, tmp string, size int64) (*File, error) {
	if filepath.Dir(tmp) != filepath.Dir(path) || !strings.HasPrefix(filepath.Base(tmp), tempPrefix(path, owner)) {
		return nil, fmt.Errorf("resume %s: %s is not one of its temporary files", path, tmp)
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	return &File{File: f, path: path, owner: owner, positioned: true}, nil
}

// Checkpoint makes everything written so far durable and returns the size
// of the file, which Resume takes. From then on Abort leaves the file.
func (f *File) Checkpoint() (int64, error) {
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	f.positioned = true
	return off, nil
}

// Reopen is Resume for a position that may outlive its temporary file: a
// writer of a continuous run commits tmp into place when it closes (a
// stop), after the flush that returned size, and the next run resumes
// from that flush. When tmp is gone and path holds at least size bytes,
// Reopen starts a new temporary file with path's first size bytes (what
// the flush made durable; anything after them was written past the
// position and is dropped), so that the next commit replaces path with
// the output continued. path itself is left as it is until then.
func Reopen(path, owner, tmp string, size int64) (*File, error) {
	f, err := Resume(path, owner, tmp, size)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resume %s: neither %s nor the file committed from it is there: %w", path, filepath.Base(tmp), err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	if fi.Size() < size {
		return nil, fmt.Errorf("resume %s: it holds %d bytes, fewer than the %d its last checkpoint made durable", path, fi.Size(), size)
	}
	f, err = Create(path, owner)
	if err != nil {
		return nil, err
	}
	if _, err := io.CopyN(f, src, size); err != nil {
		f.Abort()
		return nil, fmt.Errorf("resume %s: copy its first %d bytes: %w", path, size, err)
	}
	return f, nil
}
