package webhook

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Files of an outbox folder.
const (
	logFile  = "outbox.log"
	deadFile = "dead_letters.jsonl"
	lockFile = "lock"
)

// Operations of the outbox log, one JSON object per line.
const (
	opEnqueue  = "enq"  // a message accepted by Write
	opAttempt  = "try"  // a failed attempt: attempts, next, status, err
	opAck      = "ack"  // acknowledged by the receiver (2xx)
	opDead     = "dead" // dead-lettered (also in dead_letters.jsonl)
	opDisabled = "off"  // the endpoint answered 410 Gone
	opSeq      = "seq"  // the highest sequence number so far (after a compaction)
)

// record is one line of the outbox log.
type record struct {
	Op       string `json:"op"`
	Seq      int64  `json:"seq,omitempty"`
	ID       string `json:"id,omitempty"`
	Body     []byte `json:"body,omitempty"`
	Rows     int    `json:"rows,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Next     int64  `json:"next,omitempty"` // Unix milliseconds
	Status   int    `json:"status,omitempty"`
	Err      string `json:"err,omitempty"`
	At       int64  `json:"at,omitempty"` // Unix milliseconds
	URL      string `json:"url,omitempty"`
}

// message is one request to deliver: one row, or batch rows. Its body
// stays in memory while the bodies held stay under bodyBudget, and is
// otherwise read back from the log when needed (outbox.load), so that a
// long backlog costs disk, not memory.
type message struct {
	seq      int64
	id       string
	body     []byte // nil when only in the log
	off      int64  // where its enq line starts in the log
	n        int    // and its length
	rows     int
	attempts int       // attempts made
	next     time.Time // earliest time of the next attempt
	status   int       // last HTTP status (0: none, or no response)
	err      string    // last error without a status
	index    int       // in the delivery queue; -1 when not queued
}

// deadLetter is one line of dead_letters.jsonl.
type deadLetter struct {
	At       time.Time `json:"at"`
	ID       string    `json:"id"`
	Rows     int       `json:"rows"`
	Attempts int       `json:"attempts"`
	Status   int       `json:"last_status,omitempty"`
	Reason   string    `json:"reason"`
	Body     string    `json:"body"`
}

// outbox is the sink's durable store: an append-only log of what was
// accepted, attempted, acknowledged and dead-lettered, replayed and
// compacted when opened (see RATIONALE.md, "Webhook outbox"). It is not
// safe for concurrent use; the writer serialises calls.
type outbox struct {
	dir  string
	lock *os.File
	f    *os.File // the log, appending
	w    *bufio.Writer
	rf   *os.File // the log, reading bodies back
	size int64    // bytes of the log, buffered ones included
	dead *os.File
	// deadRows counts the rows dead-lettered since the outbox was opened.
	deadRows int64
	seq      int64
	pending  map[string]*message
	acked    map[string]int64 // id → Unix ms of the acknowledgement
	offURL   string           // the URL that answered 410, "" if none
	offWhy   string
	err      error // first write error; the outbox refuses work after it

	written int64 // bytes appended since the last compaction
	kept    int64 // bytes the last compaction wrote
	inMem   int64 // bytes of the bodies held in memory
}

// bodyBudget bounds the bytes of pending bodies held in memory; past it,
// bodies are read back from the log.
var bodyBudget int64 = 64 << 20

// compactAfter is how many bytes a run appends to the log before the
// log is compacted again (if that also more than doubled it).
var compactAfter int64 = 32 << 20

// openOutbox opens (creating) the outbox in dir for the endpoint url,
// replays its log, forgets acknowledgements older than window and
// compacts the log. Pending messages are kept whatever the engine
// resumes from: see RATIONALE.md, "Webhook ids come from the change".
func openOutbox(dir, url string, window time.Duration, now time.Time) (*outbox, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create outbox: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	b := &outbox{dir: dir, lock: lock, pending: map[string]*message{}, acked: map[string]int64{}}
	if err := b.replay(filepath.Join(dir, logFile)); err != nil {
		lock.Close()
		return nil, err
	}
	cut := now.Add(-window).UnixMilli()
	for id, at := range b.acked {
		if at < cut {
			delete(b.acked, id)
		}
	}
	if b.offURL != "" && b.offURL != url {
		b.offURL, b.offWhy = "", "" // a new URL is a new endpoint
	}
	if err := b.compact(); err != nil {
		lock.Close()
		return nil, err
	}
	dead, err := os.OpenFile(filepath.Join(dir, deadFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("open outbox dead letters: %w", err)
	}
	b.dead = dead
	return b, nil
}

// replay applies the log at path. A last line cut short by a crash is
// ignored (and dropped by the compaction that follows).
func (b *outbox) replay(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open outbox log: %w", err)
	}
	b.rf = f // bodies are read from it until the compaction
	r := bufio.NewReaderSize(f, 1<<16)
	var off int64
	for line := 1; ; line++ {
		text, err := r.ReadBytes('\n')
		if err == io.EOF {
			return nil // an unterminated last line is a torn write
		}
		if err != nil {
			return fmt.Errorf("read outbox log %s: %w", path, err)
		}
		var rec record
		if err := json.Unmarshal(text, &rec); err != nil {
			// Only the last line can be torn; a bad line followed by
			// good ones is corruption.
			if _, perr := r.Peek(1); perr == io.EOF {
				return nil
			}
			return fmt.Errorf("outbox log %s:%d: %w", path, line, err)
		}
		b.apply(rec, off, len(text))
		off += int64(len(text))
	}
}

// apply applies one record, read at off (n bytes) in the log.
func (b *outbox) apply(rec record, off int64, n int) {
	if rec.Seq > b.seq {
		b.seq = rec.Seq
	}
	switch rec.Op {
	case opEnqueue:
		b.pending[rec.ID] = &message{seq: rec.Seq, id: rec.ID, off: off, n: n, rows: rec.Rows,
			attempts: rec.Attempts, next: time.UnixMilli(rec.Next), status: rec.Status, err: rec.Err, index: -1}
	case opAttempt:
		if m := b.pending[rec.ID]; m != nil {
			m.attempts, m.next, m.status, m.err = rec.Attempts, time.UnixMilli(rec.Next), rec.Status, rec.Err
		}
	case opAck:
		delete(b.pending, rec.ID)
		b.acked[rec.ID] = rec.At
	case opDead:
		delete(b.pending, rec.ID)
	case opDisabled:
		b.offURL, b.offWhy = rec.URL, rec.Err
	}
}

// compact rewrites the log with what is still needed: the sequence
// number, the disabled endpoint, the remembered acknowledgements and the
// pending messages with their retry state.
func (b *outbox) compact() error {
	path := filepath.Join(b.dir, logFile)
	tmp, err := os.CreateTemp(b.dir, "."+logFile+".*")
	if err != nil {
		return fmt.Errorf("compact outbox: %w", err)
	}
	w := bufio.NewWriterSize(tmp, 1<<16)
	var size int64
	put := func(rec record) (int64, int) {
		line, _ := json.Marshal(rec) // records always encode
		w.Write(line)
		w.WriteByte('\n')
		off := size
		size += int64(len(line)) + 1
		return off, len(line) + 1
	}
	put(record{Op: opSeq, Seq: b.seq})
	if b.offURL != "" {
		put(record{Op: opDisabled, URL: b.offURL, Err: b.offWhy})
	}
	for id, at := range b.acked {
		put(record{Op: opAck, ID: id, At: at})
	}
	pending := b.sortedPending()
	type place struct {
		off int64
		n   int
	}
	places := make([]place, len(pending))
	for i, m := range pending {
		body, err := b.load(m)
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return fmt.Errorf("compact outbox: %w", err)
		}
		places[i].off, places[i].n = put(m.record(body))
	}
	err = w.Flush()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("compact outbox: %w", err)
	}
	if err := syncDir(b.dir); err != nil {
		return fmt.Errorf("compact outbox: %w", err)
	}
	for i, m := range pending {
		m.off, m.n = places[i].off, places[i].n
	}
	if b.f != nil {
		b.f.Close() // the replaced log, flushed by the caller
	}
	if b.rf != nil {
		b.rf.Close()
	}
	b.f, b.rf = nil, nil
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open outbox log: %w", err)
	}
	rf, err := os.Open(path)
	if err != nil {
		f.Close()
		return fmt.Errorf("open outbox log: %w", err)
	}
	b.f, b.rf, b.w = f, rf, bufio.NewWriterSize(f, 1<<16)
	b.size, b.written, b.kept = size, 0, size
	return nil
}

// load returns m's body: in memory, or read back from the log.
func (b *outbox) load(m *message) ([]byte, error) {
	if m.body != nil {
		return m.body, nil
	}
	if b.w != nil && b.w.Buffered() > 0 {
		if err := b.flush(); err != nil {
			return nil, err
		}
	}
	if b.rf == nil {
		return nil, fmt.Errorf("body of %s: outbox log closed", m.id)
	}
	line := make([]byte, m.n)
	if _, err := b.rf.ReadAt(line, m.off); err != nil {
		return nil, fmt.Errorf("read body of %s from the outbox log: %w", m.id, err)
	}
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil || rec.ID != m.id || rec.Op != opEnqueue {
		return nil, fmt.Errorf("outbox log at byte %d does not hold the body of %s", m.off, m.id)
	}
	return rec.Body, nil
}

// maybeCompact compacts the log when a long run made it grow past
// compactAfter and to more than twice what the last compaction kept.
func (b *outbox) maybeCompact() error {
	if b.err != nil || b.written < compactAfter || b.written < 2*b.kept {
		return b.err
	}
	if err := b.flush(); err != nil {
		return err
	}
	if err := b.compact(); err != nil {
		b.err = err
	}
	return b.err
}

func (m *message) record(body []byte) record {
	return record{Op: opEnqueue, Seq: m.seq, ID: m.id, Body: body, Rows: m.rows,
		Attempts: m.attempts, Next: m.next.UnixMilli(), Status: m.status, Err: m.err}
}

// sortedPending returns the pending messages in the order they were
// accepted.
func (b *outbox) sortedPending() []*message {
	out := make([]*message, 0, len(b.pending))
	for _, m := range b.pending {
		out = append(out, m)
	}
	sortBySeq(out)
	return out
}

// append appends rec to the log and returns where its line starts and
// its length.
func (b *outbox) append(rec record) (int64, int) {
	if b.err != nil {
		return 0, 0
	}
	data, err := json.Marshal(rec)
	if err != nil {
		b.err = fmt.Errorf("encode outbox record: %w", err)
		return 0, 0
	}
	b.w.Write(data)
	if err := b.w.WriteByte('\n'); err != nil {
		b.err = fmt.Errorf("write outbox log: %w", err)
	}
	off, n := b.size, len(data)+1
	b.size += int64(n)
	b.written += int64(n)
	return off, n
}

// known reports whether the message id is pending or was acknowledged
// within the window: a row written again (a replay) is not sent again.
func (b *outbox) known(id string) bool {
	_, p := b.pending[id]
	_, a := b.acked[id]
	return p || a
}

// enqueue records a new message; it is durable after the next sync.
func (b *outbox) enqueue(m *message) {
	b.seq++
	m.seq = b.seq
	m.index = -1
	b.pending[m.id] = m
	m.off, m.n = b.append(m.record(m.body))
	if b.err == nil && b.inMem+int64(len(m.body)) > bodyBudget {
		m.body = nil // read back from the log when needed
	}
	b.inMem += int64(len(m.body))
}

// forget drops m's body from memory.
func (b *outbox) forget(m *message) {
	b.inMem -= int64(len(m.body))
	m.body = nil
}

// attempted records a failed attempt and the time of the next one.
func (b *outbox) attempted(m *message) {
	b.append(record{Op: opAttempt, ID: m.id, Attempts: m.attempts, Next: m.next.UnixMilli(), Status: m.status, Err: m.err})
}

// ack records the receiver's acknowledgement.
func (b *outbox) ack(m *message, status int, now time.Time) {
	delete(b.pending, m.id)
	b.forget(m)
	b.acked[m.id] = now.UnixMilli()
	b.append(record{Op: opAck, ID: m.id, Status: status, At: now.UnixMilli()})
}

// deadLetter moves m to the dead letters with the reason.
func (b *outbox) deadLetter(m *message, reason string, now time.Time) {
	body, err := b.load(m)
	if err != nil && b.err == nil {
		b.err = err
	}
	if b.pending[m.id] == m {
		b.forget(m)
	}
	delete(b.pending, m.id)
	b.deadRows += int64(max(m.rows, 1))
	if b.err == nil {
		line, err := json.Marshal(deadLetter{At: now.UTC(), ID: m.id, Rows: m.rows, Attempts: m.attempts, Status: m.status, Reason: reason, Body: string(body)})
		if err == nil {
			_, err = b.dead.Write(append(line, '\n'))
		}
		if err != nil {
			b.err = fmt.Errorf("write outbox dead letters: %w", err)
		}
	}
	b.append(record{Op: opDead, ID: m.id, Status: m.status, Err: reason})
}

// disable records that url answered 410 Gone.
func (b *outbox) disable(url, why string) {
	b.offURL, b.offWhy = url, why
	b.append(record{Op: opDisabled, URL: url, Err: why})
}

// flush hands what was appended to the operating system: it survives a
// kill of the process, not yet a crash of the machine.
func (b *outbox) flush() error {
	if b.err != nil {
		return b.err
	}
	if err := b.w.Flush(); err != nil {
		b.err = fmt.Errorf("write outbox log: %w", err)
	}
	return b.err
}

// sync makes what was appended durable.
func (b *outbox) sync() error {
	if err := b.flush(); err != nil {
		return err
	}
	if err := b.f.Sync(); err != nil {
		b.err = fmt.Errorf("sync outbox log: %w", err)
	}
	if err := b.dead.Sync(); err != nil && b.err == nil {
		b.err = fmt.Errorf("sync outbox dead letters: %w", err)
	}
	return b.err
}

// close syncs and closes the files and releases the folder.
func (b *outbox) close() error {
	var err error
	if b.f != nil {
		if b.dead != nil {
			err = b.sync()
			b.dead.Close()
		} else {
			err = b.flush()
		}
		if cerr := b.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close outbox log: %w", cerr)
		}
	}
	if b.rf != nil {
		b.rf.Close()
		b.rf = nil
	}
	b.lock.Close() // releases the lock
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
