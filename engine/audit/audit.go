// Package audit keeps the audit trail of a pipeline: an append-only JSON
// Lines log with one entry per run (what ran, on what, with which rules
// and key, how many rows) and per erasure, each entry chained to the one
// before by its SHA-256, so that an entry edited, inserted or deleted is
// detected by [Verify].
//
// The chain proves the log is whole up to its last entry; the last entry
// itself is anchored in a head file beside the log (path + ".head"), which
// catches entries deleted from the end. Whoever can rewrite both can forge
// a shorter history: the run summary prints the head so that it also lands
// in the operator's own logs (docs/privacy.md).
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Events an entry records.
const (
	EventRun   = "run"
	EventErase = "erase"
)

// Genesis is the Prev of the first entry.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Module is a rule module that ran.
type Module struct {
	Stage   string `json:"stage"`
	Name    string `json:"name"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Stage is an input or output of a run.
type Stage struct {
	Name      string `json:"name"`
	Connector string `json:"connector"`
	// Path is the file or folder it read or wrote, when it has one.
	Path string `json:"path,omitempty"`
	Rows int64  `json:"rows"`
	// Reidentified names the column a delivery re-identified.
	Reidentified string `json:"reidentified,omitempty"`
}

// Erasure is what `vigie state erase` removed.
type Erasure struct {
	// Key is the pseudonym (or the key as given, without
	// pseudonymisation) whose data was removed; never a clear identifier
	// when a key is configured.
	Key string `json:"key"`
	// Records counts the state records removed.
	Records int `json:"records"`
}

// Entry is one line of the log.
type Entry struct {
	Seq            int64     `json:"seq"` // 1 for the first entry
	Time           time.Time `json:"time"`
	Event          string    `json:"event"`
	Pipeline       string    `json:"pipeline"`
	PipelineFile   string    `json:"pipeline_file,omitempty"`
	PipelineSHA256 string    `json:"pipeline_sha256,omitempty"`
	Rules          []Module  `json:"rules,omitempty"`
	Inputs         []Stage   `json:"inputs,omitempty"`
	Outputs        []Stage   `json:"outputs,omitempty"`
	DeadLetters    int64     `json:"dead_letters"`
	DeadLetterPath string    `json:"dead_letter_path,omitempty"`
	KeyID          string    `json:"key_id,omitempty"`
	PreviousKeyID  string    `json:"previous_key_id,omitempty"`
	Status         string    `json:"status,omitempty"`
	Error          string    `json:"error,omitempty"`
	Erased         *Erasure  `json:"erased,omitempty"`
	// Prev is the hex SHA-256 of the previous line (without its newline),
	// Genesis for the first.
	Prev string `json:"prev"`
}

// HeadPath is where the head of the log at path is kept.
func HeadPath(path string) string { return path + ".head" }

// mu serialises appends within the process; runs of one pipeline are not
// concurrent (the state store is locked by the first).
var mu sync.Mutex

// Append adds e to the log at path (created with its folder if needed),
// setting its Seq, Prev and, when zero, Time; it returns the entry
// written and the SHA-256 of its line, which is the new head.
func Append(path string, e Entry) (Entry, string, error) {
	mu.Lock()
	defer mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return e, "", fmt.Errorf("audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return e, "", fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	last, err := lastLine(f)
	if err != nil {
		return e, "", fmt.Errorf("audit log %s: %w", path, err)
	}
	e.Seq, e.Prev = 1, Genesis
	if last != nil {
		var prev Entry
		if err := json.Unmarshal(last, &prev); err != nil {
			return e, "", fmt.Errorf("audit log %s: last entry unreadable (run vigie audit verify): %w", path, err)
		}
		e.Seq, e.Prev = prev.Seq+1, hashLine(last)
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return e, "", fmt.Errorf("audit entry: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return e, "", fmt.Errorf("audit log %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return e, "", fmt.Errorf("audit log %s: %w", path, err)
	}
	head := hashLine(line)
	if err := writeHead(path, e.Seq, head); err != nil {
		return e, "", err
	}
	return e, head, nil
}

func hashLine(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// writeHead records the last entry's number and hash, atomically.
func writeHead(path string, seq int64, hash string) error {
	tmp := HeadPath(path) + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %s\n", seq, hash)), 0o600); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	if err := os.Rename(tmp, HeadPath(path)); err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	return nil
}

// lastLine returns the last non-empty line of f, nil for an empty file.
func lastLine(f *os.File) ([]byte, error) {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	const chunk = 64 << 10
	var tail []byte
	for pos := end; pos > 0; {
		n := min(int64(chunk), pos)
		pos -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, pos); err != nil {
			return nil, err
		}
		tail = append(buf, tail...)
		t := bytes.TrimRight(tail, "\n")
		if i := bytes.LastIndexByte(t, '\n'); i >= 0 {
			return t[i+1:], nil
		}
		if pos == 0 && len(t) > 0 {
			return t, nil
		}
	}
	return nil, nil
}

// VerifyError is a broken chain, at a line of the log (1-based).
type VerifyError struct {
	Path string
	Line int
	Msg  string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// Verify reads the log at path and checks every entry's number and chain
// link, then the last one against the head file. It returns the number of
// entries; a broken chain is a *VerifyError naming the first line found
// wrong.
func Verify(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	prevHash, n := Genesis, 0
	bad := func(msg string, args ...any) error {
		return &VerifyError{Path: path, Line: n, Msg: fmt.Sprintf(msg, args...)}
	}
	for sc.Scan() {
		n++
		line := sc.Bytes()
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return n, bad("not an audit entry: %v", err)
		}
		if e.Seq != int64(n) {
			return n, bad("entry number %d, want %d: an entry was inserted or deleted before this line", e.Seq, n)
		}
		if e.Prev != prevHash {
			if n == 1 {
				return n, bad("the first entry does not start the chain: entries were deleted from the start")
			}
			return n, &VerifyError{Path: path, Line: n - 1, Msg: fmt.Sprintf("edited: its SHA-256 is not the prev recorded by line %d (or an entry was inserted or deleted between lines %d and %d)", n, n-1, n)}
		}
		prevHash = hashLine(line)
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("audit log %s: %w", path, err)
	}
	head, err := os.ReadFile(HeadPath(path))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && n == 0 {
			return 0, nil
		}
		return n, fmt.Errorf("audit head: %w", err)
	}
	seqS, hash, _ := strings.Cut(strings.TrimSpace(string(head)), " ")
	seq, _ := strconv.Atoi(seqS)
	switch {
	case seq != n:
		return n, &VerifyError{Path: path, Line: n, Msg: fmt.Sprintf("the log ends at entry %d but its head (%s) records entry %d: entries were deleted from the end", n, HeadPath(path), seq)}
	case hash != prevHash:
		return n, &VerifyError{Path: path, Line: n, Msg: fmt.Sprintf("the last entry's SHA-256 differs from its head (%s): the last line was edited", HeadPath(path))}
	}
	return n, nil
}
