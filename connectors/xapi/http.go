package xapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/jsonl"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// HTTPSourceName is the registry name of the xAPI endpoint source.
const HTTPSourceName = "xapi_http"

// StatementsPath is the path of the Statements resource.
const StatementsPath = "/xapi/statements"

// APIVersion is the version the endpoint answers with.
const APIVersion = "1.0.3"

// Option names of the endpoint.
const (
	optListen        = "listen"
	optAuthEnv       = "auth_env"
	optSpool         = "spool"
	optFlushInterval = "flush_interval"
	optMaxBodyBytes  = "max_body_bytes"
	optReplayOnly    = "replay_only"
)

// HTTPSource is the xAPI endpoint source, registered as "xapi_http". It
// is stateless and safe for concurrent use; each Read serves its own
// listener.
type HTTPSource struct{}

var _ protocol.Source = HTTPSource{}

var httpSpec = protocol.Spec{
	Name:    HTTPSourceName,
	Kind:    protocol.KindSource,
	Version: "1.0.0",
	Doc: `Connector "xapi_http" (source): an xAPI 1.0.3 endpoint. It serves the
Statements resource at /xapi/statements for PUT (?statementId=UUID, one
statement; 204) and POST (one statement or an array; 200 with the array of
statement ids, a UUID generated for each statement without one), and emits
the statements it accepts, flattened as by the "xapi" source, every
batch_rows statements or every flush_interval. Requests need HTTP Basic
authentication (401 otherwise) with the user:password held by the
environment variable named by auth_env (never the secret in the pipeline
file) and an X-Experience-API-Version header 1.0.x (400 otherwise). A body
over max_body_bytes is refused (413); a statement the specification rejects
makes the whole request fail (400, a JSON body {"error": "..."} naming the
statement and the property); a statement id already received with the same
content is accepted again without a new row, with other content refused
(409). Accepted statements are first appended to the spool file (synced to
disk) and acknowledged only then: positions are offsets in the spool, so a
stopped or crashed run resumes from the spool and nothing acknowledged is
lost. A run without a resume position reads the spool from its start, then
listens; remove or rotate the spool to start afresh. The run ends when it
is stopped; replay_only reads the spool and ends without listening.`,
	Options: []protocol.Option{
		{Name: optListen, Type: protocol.TypeString, Default: "127.0.0.1:8089", Doc: "address to listen on, host:port"},
		{Name: optAuthEnv, Type: protocol.TypeString, Required: true,
			Doc: "name of the environment variable holding the Basic credentials, user:password"},
		{Name: optSpool, Type: protocol.TypePath, Required: true, Doc: "file where accepted statements are kept, one JSON statement per line"},
		{Name: optFlushInterval, Type: protocol.TypeString, Default: "1s", Doc: "longest time an accepted statement waits before its batch is emitted (Go duration: 500ms, 2s)"},
		{Name: optMaxBodyBytes, Type: protocol.TypeInt, Default: int64(1 << 20), Doc: "largest request body accepted, in bytes"},
		rawOption,
		{Name: optReplayOnly, Type: protocol.TypeBool, Default: false, Doc: "emit what the spool holds and end, without listening"},
	},
}

// Spec describes the connector and its options.
func (HTTPSource) Spec() protocol.Spec { return httpSpec }

type httpPlan struct {
	listen     string
	user, pass string
	spool      string
	flushEvery time.Duration
	maxBody    int64
	raw        bool
	replayOnly bool
	batchRows  int
	schema     *arrow.Schema
}

func newHTTPPlan(cfg protocol.Config) (*httpPlan, error) {
	opts, err := httpSpec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	bad := func(opt, format string, args ...any) error {
		return fmt.Errorf("connector %q: option %q: %s: %w", HTTPSourceName, opt, fmt.Sprintf(format, args...), protocol.ErrConfig)
	}
	p := &httpPlan{
		listen:     cfg.String(optListen),
		spool:      cfg.String(optSpool),
		maxBody:    cfg.Int(optMaxBodyBytes),
		raw:        cfg.Bool(optRaw),
		replayOnly: cfg.Bool(optReplayOnly),
		batchRows:  cfg.BatchRows,
	}
	if p.batchRows <= 0 {
		p.batchRows = protocol.DefaultBatchRows
	}
	if p.flushEvery, err = time.ParseDuration(cfg.String(optFlushInterval)); err != nil || p.flushEvery <= 0 {
		return nil, bad(optFlushInterval, "expected a positive duration like 1s or 500ms, got %q", cfg.String(optFlushInterval))
	}
	if p.maxBody < 1 {
		return nil, bad(optMaxBodyBytes, "expected at least 1, got %d", p.maxBody)
	}
	if _, _, err := net.SplitHostPort(p.listen); err != nil {
		return nil, bad(optListen, "expected host:port, got %q", p.listen)
	}
	env := cfg.String(optAuthEnv)
	if strings.Contains(env, ":") {
		return nil, bad(optAuthEnv, "expected the name of an environment variable, not credentials")
	}
	cred, ok := os.LookupEnv(env)
	if !ok || cred == "" {
		return nil, bad(optAuthEnv, "environment variable %s is not set (expected user:password)", env)
	}
	var found bool
	if p.user, p.pass, found = strings.Cut(cred, ":"); !found || p.user == "" || p.pass == "" {
		return nil, bad(optAuthEnv, "environment variable %s must hold user:password", env)
	}
	p.schema = Schema(p.raw)
	return p, nil
}

// Schema returns the flattened statement schema.
func (HTTPSource) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newHTTPPlan(cfg)
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// spoolPosition is the position of the endpoint: Offset bytes (Line lines)
// of the spool have been emitted.
type spoolPosition struct {
	Offset int64 `json:"offset"`
	Line   int64 `json:"line"`
}

// accepted is a statement written to the spool, on its way to a batch.
type accepted struct {
	s   *statement
	raw []byte
	end spoolPosition
}

// endpoint is the state of one Read of the endpoint.
type endpoint struct {
	*httpPlan
	log     *slog.Logger
	mu      sync.Mutex // guards the spool, seen and end
	spoolF  *os.File
	seen    map[string][32]byte // statement id -> content hash
	end     spoolPosition       // of the spool
	queue   chan accepted
	closing chan struct{}
}

// Read replays the spool after cfg.Resume, then serves the endpoint and
// emits what it accepts until ctx is cancelled.
func (HTTPSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newHTTPPlan(cfg)
	if err != nil {
		return err
	}
	var from spoolPosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
	}
	e := &endpoint{httpPlan: p, log: slog.Default().With("connector", HTTPSourceName), seen: map[string][32]byte{},
		queue: make(chan accepted, p.batchRows), closing: make(chan struct{})}
	if err := e.openSpool(); err != nil {
		return err
	}
	defer e.spoolF.Close()
	b := array.NewRecordBuilder(mem, p.schema)
	defer b.Release()
	bt := &batcher{b: b, out: sdk.NewOut(out), rows: p.batchRows}
	if err := e.replay(ctx, from, bt); err != nil {
		return err
	}
	if err := bt.flush(ctx); err != nil {
		return err
	}
	if p.replayOnly {
		return nil
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return fmt.Errorf("connector %q: listen on %s: %w: %w", HTTPSourceName, p.listen, err, protocol.ErrConfig)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		close(e.closing) // handlers blocked on the queue give up: their statements are spooled
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		<-served
	}()
	e.log.Info("xAPI endpoint listening", "addr", ln.Addr().String(), "path", StatementsPath)
	tick := time.NewTicker(p.flushEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-served:
			served <- err
			return fmt.Errorf("connector %q: serve %s: %w", HTTPSourceName, p.listen, err)
		case a := <-e.queue:
			bt.pos = a.end
			if err := bt.add(ctx, a.s, a.raw); err != nil {
				return err
			}
		case <-tick.C:
			if err := bt.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// batcher gathers rows and emits them every rows rows or on flush. The
// endpoint's rows are statements already accepted, so there are no dead
// letters; sdk.Out emits the batches.
type batcher struct {
	b    *array.RecordBuilder
	out  *sdk.Out
	rows int
	n    int
	pos  spoolPosition
}

func (bt *batcher) add(ctx context.Context, s *statement, raw []byte) error {
	s.appendRow(bt.b, raw)
	if bt.n++; bt.n >= bt.rows {
		return bt.flush(ctx)
	}
	return nil
}

func (bt *batcher) flush(ctx context.Context) error {
	n := bt.n
	bt.n = 0
	return bt.out.Emit(ctx, bt.b, n, bt.pos) // nothing when n is 0
}

// openSpool opens (or creates) the spool for appending, dropping a last
// line left unfinished by a crash (never acknowledged).
func (e *endpoint) openSpool() error {
	f, err := os.OpenFile(e.spool, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("connector %q: open spool %s: %w: %w", HTTPSourceName, e.spool, err, protocol.ErrConfig)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil && size > 0 {
		// Find the end of the last complete line.
		buf := make([]byte, 64<<10)
		end := size
		for end > 0 {
			n := int64(len(buf))
			if n > end {
				n = end
			}
			if _, err = f.ReadAt(buf[:n], end-n); err != nil {
				break
			}
			if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
				end = end - n + int64(i) + 1
				break
			}
			end -= n
		}
		if err == nil && end < size {
			e.log.Warn("dropping an unfinished last line of the spool", "spool", e.spool, "bytes", size-end)
			err = f.Truncate(end)
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("connector %q: spool %s: %w", HTTPSourceName, e.spool, err)
	}
	e.spoolF = f
	return nil
}

// replay reads the whole spool to learn the ids received, and emits the
// statements after from.
func (e *endpoint) replay(ctx context.Context, from spoolPosition, bt *batcher) error {
	f, err := jsonl.OpenFile(e.spool, 0, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		line, err := f.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("connector %q: read spool %s: %w", HTTPSourceName, e.spool, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		s, inv := parse(line)
		if inv != nil {
			return fmt.Errorf("connector %q: spool %s:%d is not a statement this endpoint wrote (%v): %w",
				HTTPSourceName, e.spool, f.Line, inv, protocol.ErrConfig)
		}
		h, err := contentHash(line)
		if err != nil {
			return err
		}
		e.seen[s.ID] = h
		e.end = spoolPosition{Offset: f.Offset, Line: f.Line}
		if f.Offset <= from.Offset {
			continue
		}
		lrsDefaults(s)
		bt.pos = e.end
		if err := bt.add(ctx, s, bytes.Clone(line)); err != nil {
			return err
		}
	}
	if from.Offset > e.end.Offset {
		return fmt.Errorf("connector %q: resume position %d is past the end of the spool %s (%d bytes): %w",
			HTTPSourceName, from.Offset, e.spool, e.end.Offset, protocol.ErrConfig)
	}
	return nil
}

// lrsDefaults fills in what an LRS sets on a stored statement.
func lrsDefaults(s *statement) {
	if s.Timestamp == "" {
		s.Timestamp = s.Stored
	}
}

// xapiError is a request the endpoint refuses.
type xapiError struct {
	status int
	msg    string
}

func (e *endpoint) fail(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

// ServeHTTP serves the Statements resource.
func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Experience-API-Version", APIVersion)
	if r.URL.Path != StatementsPath && r.URL.Path != StatementsPath+"/" {
		e.fail(w, http.StatusNotFound, "no resource at %s (statements are at %s)", r.URL.Path, StatementsPath)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(e.user))&subtle.ConstantTimeCompare([]byte(pass), []byte(e.pass)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="vigie xAPI"`)
		e.fail(w, http.StatusUnauthorized, "authentication required (HTTP Basic)")
		return
	}
	if v := r.Header.Get("X-Experience-API-Version"); !IsVersion(v) {
		e.fail(w, http.StatusBadRequest, "header X-Experience-API-Version: expected 1.0.x, got %q", v)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		e.fail(w, http.StatusMethodNotAllowed, "method %s is not served (POST, PUT)", r.Method)
		return
	}
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
		e.fail(w, http.StatusBadRequest, "statements with attachments (multipart/mixed) are not supported")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, e.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			e.fail(w, http.StatusRequestEntityTooLarge, "body larger than %d bytes", e.maxBody)
			return
		}
		e.fail(w, http.StatusBadRequest, "read body: %v", err)
		return
	}
	var ids []string
	var xerr *xapiError
	if r.Method == http.MethodPut {
		xerr = e.put(r, body)
	} else {
		ids, xerr = e.post(body)
	}
	if xerr != nil {
		e.fail(w, xerr.status, "%s", xerr.msg)
		return
	}
	if r.Method == http.MethodPut {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ids)
}

// incoming is a statement of a request, checked.
type incoming struct {
	s    *statement
	raw  []byte
	hash [32]byte
}

func badRequest(format string, args ...any) *xapiError {
	return &xapiError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func (e *endpoint) check(raw []byte, where string) (incoming, *xapiError) {
	s, inv := parse(raw)
	if inv != nil {
		return incoming{}, badRequest("%s%v", where, inv)
	}
	h, err := contentHash(raw)
	if err != nil {
		return incoming{}, badRequest("%snot JSON: %v", where, err)
	}
	return incoming{s: s, raw: raw, hash: h}, nil
}

func (e *endpoint) put(r *http.Request, body []byte) *xapiError {
	id := r.URL.Query().Get("statementId")
	if !IsUUID(id) {
		return badRequest("parameter statementId: expected a UUID, got %q", id)
	}
	in, xerr := e.check(body, "")
	if xerr != nil {
		return xerr
	}
	if in.s.ID != "" && !strings.EqualFold(in.s.ID, id) {
		return badRequest("id: %q differs from the statementId parameter %q", in.s.ID, id)
	}
	in.s.ID = strings.ToLower(id)
	return e.store([]incoming{in})
}

func (e *endpoint) post(body []byte) ([]string, *xapiError) {
	trimmed := bytes.TrimSpace(body)
	var raws []json.RawMessage
	single := len(trimmed) > 0 && trimmed[0] == '{'
	if single {
		raws = []json.RawMessage{trimmed}
	} else if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, badRequest("expected a statement or an array of statements")
	} else if err := json.Unmarshal(trimmed, &raws); err != nil {
		return nil, badRequest("not JSON: %s", jsonError(trimmed))
	}
	ins := make([]incoming, len(raws))
	ids := make([]string, len(raws))
	inBatch := map[string]int{}
	for i, raw := range raws {
		where := ""
		if !single {
			where = fmt.Sprintf("statement %d: ", i+1)
		}
		in, xerr := e.check(raw, where)
		if xerr != nil {
			return nil, xerr
		}
		if in.s.ID == "" {
			in.s.ID = newUUID()
		}
		in.s.ID = strings.ToLower(in.s.ID)
		if j, dup := inBatch[in.s.ID]; dup {
			return nil, badRequest("%sid %s is also the id of statement %d", where, in.s.ID, j+1)
		}
		inBatch[in.s.ID] = i
		ins[i], ids[i] = in, in.s.ID
	}
	return ids, e.store(ins)
}

// store spools the statements not received before and queues them. The
// request fails as a whole on an id received with other content.
func (e *endpoint) store(ins []incoming) *xapiError {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.closing:
		return &xapiError{status: http.StatusServiceUnavailable, msg: "the endpoint is stopping; retry later"}
	default:
	}
	var fresh []incoming
	for _, in := range ins {
		if h, ok := e.seen[in.s.ID]; ok {
			if h != in.hash {
				return &xapiError{status: http.StatusConflict, msg: fmt.Sprintf("statement %s was received before with other content", in.s.ID)}
			}
			continue
		}
		fresh = append(fresh, in)
	}
	if len(fresh) == 0 {
		return nil
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	var buf bytes.Buffer
	lines := make([][]byte, len(fresh))
	for i, in := range fresh {
		line, err := stamp(in.raw, in.s.ID, now)
		if err != nil {
			return badRequest("%v", err)
		}
		in.s.Stored = now
		lrsDefaults(in.s)
		lines[i] = line
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if _, err := e.spoolF.Write(buf.Bytes()); err != nil {
		e.spoolF.Truncate(e.end.Offset)
		return &xapiError{status: http.StatusServiceUnavailable, msg: "cannot store the statements; retry later"}
	}
	if err := e.spoolF.Sync(); err != nil {
		return &xapiError{status: http.StatusServiceUnavailable, msg: "cannot store the statements; retry later"}
	}
	for i, in := range fresh {
		e.seen[in.s.ID] = in.hash
		e.end.Offset += int64(len(lines[i]) + 1)
		e.end.Line++
		select {
		case e.queue <- accepted{s: in.s, raw: lines[i], end: e.end}:
		case <-e.closing:
			// Spooled: the next run replays it from the last position.
		}
	}
	return nil
}

// stamp sets a statement's id and stored time and returns it as one line.
func stamp(raw []byte, id, stored string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m["id"], _ = json.Marshal(id)
	m["stored"], _ = json.Marshal(stored)
	return json.Marshal(m)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
