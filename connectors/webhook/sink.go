// Package webhook is the "webhook" sink: rows (alert changes, typically)
// POSTed as signed JSON to an HTTP endpoint following Standard Webhooks
// v1, from a durable outbox, with retries. See the connector's Doc in
// options.go and docs/connectors.md.
package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Sink is the webhook sink. Log receives delivery warnings (an endpoint
// disabled, messages left in the outbox); nil means slog.Default(), which
// in a plugin process reaches the engine's log. It is safe for concurrent
// use.
type Sink struct {
	Log *slog.Logger
}

var _ protocol.Sink = Sink{}

// Spec describes the connector and its options.
func (Sink) Spec() protocol.Spec { return spec }

// Validate checks the options, reads the secrets and creates the outbox
// folder.
func (Sink) Validate(ctx context.Context, cfg protocol.Config) error {
	s, err := check(cfg, os.Getenv)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.outbox, 0o755); err != nil {
		return optionError(optOutbox, "%v", err)
	}
	return nil
}

// position is what Flush returns: the sequence number of the last message
// made durable.
type position struct {
	Seq int64 `json:"seq"`
}

// Open opens the outbox, starts delivering what it holds (left by earlier
// runs) and returns a writer that appends rows to it.
func (k Sink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	s, err := check(cfg, os.Getenv)
	if err != nil {
		return nil, err
	}
	enc, err := newEncoder(s, schema)
	if err != nil {
		return nil, err
	}
	if cfg.Resume != nil {
		// The outbox keeps what the crashed writer accepted after its
		// last flush; the engine's replay of those rows finds their ids
		// known and skips them.
		var p position
		if err := protocol.DecodePosition(cfg.Resume, &p); err != nil {
			return nil, err
		}
	}
	log := k.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("sink", cfg.Stage, "url", s.url)
	if plainRemote(s.url) {
		log.Warn("webhook endpoint over plain http: the changes (student data) cross the network unencrypted; use https")
	}
	dir, err := filepath.Abs(s.outbox)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	writers.Lock()
	defer writers.Unlock()
	if old := writers.byDir[dir]; old != nil {
		// Only a writer abandoned without Close or Abort (a crash as
		// an in-process test plays it) can still hold the folder.
		log.Warn("webhook outbox taken over from an abandoned writer", "outbox", dir)
		old.taken.Store(true)
		old.shut()
	}
	box, err := openOutbox(dir, s.url, s.dedupeWindow, time.Now())
	if err != nil {
		return nil, err
	}
	if n := len(box.pending); n > 0 {
		log.Info("webhook outbox holds messages from an earlier run", "pending", n)
	}
	e := newEndpoint(s, box, log)
	e.start()
	w := &writer{s: s, enc: enc, e: e, log: log, dir: dir}
	writers.byDir[dir] = w
	return w, nil
}

// plainRemote reports an http (not https) URL to a host other than the
// loopback.
func plainRemote(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// writers are the open writers of this process by outbox folder. A
// folder's lock (lock_unix.go) keeps other processes out; within one
// process, a writer opened on the folder of another one takes over from
// it: the engine only does that after the first one's plugin died, and
// an in-process test (connectors/conformance) abandons a writer to play a
// crash.
var writers = struct {
	sync.Mutex
	byDir map[string]*writer
}{byDir: map[string]*writer{}}

// writer appends each batch's messages to the outbox; the endpoint
// delivers them.
type writer struct {
	s   *settings
	enc *encoder
	e   *endpoint
	log *slog.Logger
	dir string

	once    sync.Once
	shutErr error
	taken   atomic.Bool // another writer opened the folder
}

// errTaken is what a writer whose folder another one took returns.
func (w *writer) errTaken() error {
	return fmt.Errorf("webhook outbox %s: another writer opened it (two sinks with one outbox folder?)", w.dir)
}

var (
	_ protocol.Writer            = (*writer)(nil)
	_ protocol.Flusher           = (*writer)(nil)
	_ protocol.DeadLetterCounter = (*writer)(nil)
)

// DeadLettered returns how many rows went to the outbox's dead letters
// since the writer opened it: rows that cannot be sent, changes given up
// after their attempts or for a disabled endpoint (earlier runs' included
// when given up now).
func (w *writer) DeadLettered() int64 {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.e.box.deadRows
}

// Write encodes the batch's rows into messages and appends them to the
// outbox (handed to the operating system before Write returns, durable
// at the next Flush or Close). A message whose id the outbox knows
// (pending, or acknowledged within dedupe_window) is skipped. Rows that
// cannot be sent (a null or bad id) go to the outbox's dead letters.
func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if w.taken.Load() {
		return w.errTaken()
	}
	msgs, bad, err := w.enc.messages(rec, time.Now())
	if err != nil {
		return err
	}
	e := w.e
	e.mu.Lock()
	now := e.now()
	for _, b := range bad {
		e.box.deadLetter(b.msg, b.reason, now)
	}
	for _, m := range msgs {
		if e.box.known(m.id) {
			continue
		}
		m.next = now.Add(w.s.schedule[0])
		e.box.enqueue(m)
		if e.box.offURL != "" {
			e.box.deadLetter(m, "endpoint disabled: "+e.box.offWhy, now)
			continue
		}
		e.enqueueLocked(m)
	}
	err = e.box.maybeCompact()
	if err == nil {
		err = e.box.flush()
	}
	e.mu.Unlock()
	e.notify()
	if err != nil {
		return fmt.Errorf("webhook outbox: %w", err)
	}
	return nil
}

// Flush makes every message written so far durable.
func (w *writer) Flush(ctx context.Context) (protocol.Position, error) {
	if w.taken.Load() {
		return nil, w.errTaken()
	}
	w.e.mu.Lock()
	err := w.e.box.maybeCompact()
	if err == nil {
		err = w.e.box.sync()
	}
	seq := w.e.box.seq
	w.e.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("webhook outbox: %w", err)
	}
	return protocol.NewPosition(position{Seq: seq})
}

// Close makes the outbox durable, waits up to drain_timeout (or ctx) for
// the pending messages to be delivered, then stops; what is left stays
// in the outbox for the next run.
func (w *writer) Close(ctx context.Context) error {
	if w.taken.Load() {
		return w.errTaken()
	}
	w.e.mu.Lock()
	err := w.e.box.sync()
	w.e.mu.Unlock()
	if err != nil {
		w.release()
		return fmt.Errorf("webhook outbox: %w", err)
	}
	left := w.e.drain(ctx, time.Now().Add(w.s.drainTimeout))
	if left > 0 {
		w.log.Warn("webhook messages left in the outbox for the next run", "pending", left, "outbox", w.s.outbox)
	}
	return w.release()
}

// Abort stops delivering at once; the outbox keeps what was written (a
// rerun writing the same rows does not duplicate them).
func (w *writer) Abort(ctx context.Context) error {
	return w.release()
}

// release shuts the writer down and forgets it.
func (w *writer) release() error {
	err := w.shut()
	writers.Lock()
	if writers.byDir[w.dir] == w {
		delete(writers.byDir, w.dir)
	}
	writers.Unlock()
	return err
}

// shut stops the deliveries and closes the outbox, once.
func (w *writer) shut() error {
	w.once.Do(func() {
		w.e.stop()
		w.e.mu.Lock()
		defer w.e.mu.Unlock()
		if err := w.e.box.close(); err != nil {
			w.shutErr = fmt.Errorf("webhook outbox: %w", err)
		}
	})
	return w.shutErr
}

// encoder turns rows into messages.
type encoder struct {
	s       *settings
	fields  []arrow.Field
	idCol   int   // id_column, or -1
	idCols  []int // columns hashed into the id
	data    []int // columns of the body's data
	change  int   // the change column, or -1
	typeFix string
}

// validID reports whether id may be an id_column value: 1 to 256 of
// letters, digits, _ - and : (no "." that would make the signed content
// ambiguous, nothing a header cannot carry). A loop rather than the
// regexp ^[A-Za-z0-9_:\-]{1,256}$, whose 256 repetitions took 0.55 ms and
// 3,360 allocations to compile at package init, in every vigie process.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func newEncoder(s *settings, schema *arrow.Schema) (*encoder, error) {
	e := &encoder{s: s, fields: schema.Fields(), idCol: -1, change: -1, typeFix: s.eventType}
	names := make([]string, schema.NumFields())
	for i, f := range schema.Fields() {
		names[i] = f.Name
	}
	col := func(opt, name string) (int, error) {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			return -1, optionError(opt, "no column %q in the input (columns: %s)", name, strings.Join(names, ", "))
		}
		return idx[0], nil
	}
	has := func(name string) bool { return len(schema.FieldIndices(name)) == 1 }
	var err error
	if s.idColumn != "" {
		if e.idCol, err = col(optIDColumn, s.idColumn); err != nil {
			return nil, err
		}
	}
	idCols := s.idColumns
	if s.idColumn == "" && len(idCols) == 0 {
		if has("alert_id") && has("change") {
			for _, c := range alertIDColumns {
				if has(c) {
					idCols = append(idCols, c)
				}
			}
		} else {
			idCols = names
		}
	}
	for _, c := range idCols {
		i, err := col(optIDColumns, c)
		if err != nil {
			return nil, err
		}
		e.idCols = append(e.idCols, i)
	}
	if has("change") {
		e.change = schema.FieldIndices("change")[0]
	}
	switch {
	case !s.thin:
		for i := range names {
			e.data = append(e.data, i)
		}
	case len(s.thinColumns) > 0:
		for _, c := range s.thinColumns {
			i, err := col(optThinColumns, c)
			if err != nil {
				return nil, err
			}
			e.data = append(e.data, i)
		}
	default:
		for _, c := range defaultThinColumns {
			if has(c) {
				e.data = append(e.data, schema.FieldIndices(c)[0])
			}
		}
		if len(e.data) == 0 {
			return nil, optionError(optThinColumns, "the input has none of the default thin columns (%s): name them", strings.Join(defaultThinColumns, ", "))
		}
	}
	return e, nil
}

// b32 encodes ids: lowercase, no padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// rowID returns the webhook-id of row i, or a reason why it has none.
func (e *encoder) rowID(rec arrow.RecordBatch, i int) (string, string) {
	if e.idCol >= 0 {
		c := rec.Column(e.idCol)
		if c.IsNull(i) {
			return "", fmt.Sprintf("id column %q is null", e.s.idColumn)
		}
		id := c.ValueStr(i)
		if !validID(id) {
			return "", fmt.Sprintf("id column %q: %q is not a webhook id (1 to 256 of letters, digits, _ - :)", e.s.idColumn, id)
		}
		return id, ""
	}
	h := sha256.New()
	for _, j := range e.idCols {
		h.Write([]byte(e.fields[j].Name))
		h.Write([]byte{0x1f})
		if c := rec.Column(j); c.IsNull(i) {
			h.Write([]byte{0})
		} else {
			h.Write([]byte{1})
			h.Write([]byte(c.ValueStr(i)))
		}
		h.Write([]byte{0x1e})
	}
	return "msg_" + strings.ToLower(b32.EncodeToString(h.Sum(nil)[:20])), ""
}

func (e *encoder) rowType(rec arrow.RecordBatch, i int) string {
	if e.typeFix != "" {
		return e.typeFix
	}
	if e.change >= 0 && !rec.Column(e.change).IsNull(i) {
		return "alert." + rec.Column(e.change).ValueStr(i)
	}
	return "vigie.row"
}

func (e *encoder) rowData(rec arrow.RecordBatch, i int) map[string]any {
	row := make(map[string]any, len(e.data))
	for _, j := range e.data {
		row[e.fields[j].Name] = rec.Column(j).GetOneForMarshal(i)
	}
	return row
}

// event is one row in a body.
type event struct {
	ID        string         `json:"id,omitempty"` // in batches only
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp,omitempty"`
	Data      map[string]any `json:"data"`
}

// batchBody is the body of a batch.
type batchBody struct {
	Type      string  `json:"type"`
	Timestamp string  `json:"timestamp"`
	Data      []event `json:"data"`
}

// badRow is a row that cannot be sent, as a message for the dead letters.
type badRow struct {
	msg    *message
	reason string
}

// messages encodes rec's rows; now stamps the bodies.
func (e *encoder) messages(rec arrow.RecordBatch, now time.Time) ([]*message, []badRow, error) {
	ts := now.UTC().Format(time.RFC3339Nano)
	var msgs []*message
	var bad []badRow
	var batch []event
	var ids []string
	flushBatch := func() error {
		if len(batch) == 0 {
			return nil
		}
		body, err := json.Marshal(batchBody{Type: "vigie.batch", Timestamp: ts, Data: batch})
		if err != nil {
			return fmt.Errorf("encode webhook batch: %w", err)
		}
		h := sha256.Sum256([]byte(strings.Join(ids, "\n")))
		msgs = append(msgs, &message{id: "msg_" + strings.ToLower(b32.EncodeToString(h[:20])), body: body, rows: len(batch), index: -1})
		batch, ids = batch[:0:0], ids[:0:0]
		return nil
	}
	for i := range int(rec.NumRows()) {
		id, why := e.rowID(rec, i)
		ev := event{Type: e.rowType(rec, i), Timestamp: ts, Data: e.rowData(rec, i)}
		if why != "" {
			body, _ := json.Marshal(ev)
			bad = append(bad, badRow{msg: &message{id: fmt.Sprintf("row %d", i), body: body, rows: 1}, reason: why})
			continue
		}
		if e.s.batch == 1 {
			body, err := json.Marshal(ev)
			if err != nil {
				return nil, nil, fmt.Errorf("encode row %d as JSON: %w", i, err)
			}
			msgs = append(msgs, &message{id: id, body: body, rows: 1, index: -1})
			continue
		}
		ev.ID, ev.Timestamp = id, ""
		batch = append(batch, ev)
		ids = append(ids, id)
		if len(batch) == e.s.batch {
			if err := flushBatch(); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := flushBatch(); err != nil {
		return nil, nil, err
	}
	return msgs, bad, nil
}
