package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/suggest"
)

// Version is the version of this contract. A host and a plugin agree on
// one when the plugin starts and talk only if they share it. Version 2
// added source positions, Config.Resume and sink flushes with
// acknowledgements; plugins built with this package still serve version 1
// to older hosts (no positions, one final acknowledgement).
const Version = 2

// DefaultBatchRows is the batch size of a pipeline whose batch_rows is not
// set, and the one a source uses when Config.BatchRows is 0 (a caller other
// than the engine, say). It is defined here, once, for the engine and every
// connector.
const DefaultBatchRows = 65536

// DefaultMaxDelay is the max_delay of a pipeline that does not set it, and
// the one a source uses when Config.MaxDelay is 0.
const DefaultMaxDelay = 200 * time.Millisecond

// Position is a connector's own bookmark, opaque to the engine and encoded
// as JSON by the connector. A source attaches one to every batch it emits:
// reading again with Config.Resume set to it yields exactly the rows after
// that batch. A sink returns one from Flusher.Flush: opening it again with
// Config.Resume set to it continues the output as if exactly the rows
// written before the flush had been written. nil means no position.
type Position = json.RawMessage

// NewPosition encodes v (a struct, a number) as a Position.
func NewPosition(v any) (Position, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode position: %w", err)
	}
	return b, nil
}

// DecodePosition decodes p into v. A position that does not decode is a
// configuration error (a resume position from another connector, say).
func DecodePosition(p Position, v any) error {
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("decode resume position %s: %w: %w", p, err, ErrConfig)
	}
	return nil
}

// Connector is anything with a Spec: a Source or a Sink.
type Connector interface {
	Spec() Spec
}

// Config is what a connector receives for one stage of a pipeline. Options
// have been checked against the Spec (Spec.Check) and paths resolved.
type Config struct {
	// Pipeline and Stage name the pipeline and the stage, for messages.
	Pipeline string `json:"pipeline"`
	Stage    string `json:"stage"`
	// Connector is the connector's name in its registry.
	Connector string `json:"connector"`
	// BatchRows is the most rows a source should put in one batch; 0 means
	// DefaultBatchRows.
	BatchRows int `json:"batch_rows"`
	// MaxDelay is the longest a row read by an unbounded source waits for
	// its batch to fill: a partial batch leaves MaxDelay after its first
	// row (sdk.Batcher.Due). 0 means DefaultMaxDelay. A source that ends
	// at the end of a finite input may ignore it.
	MaxDelay time.Duration `json:"max_delay,omitempty"`
	// Options are the checked options.
	Options map[string]any `json:"options"`
	// Resume, when set, is a Position the same connector returned for the
	// same options: a source reads what follows it, a sink continues the
	// output it describes. Nil starts from the beginning.
	Resume Position `json:"resume,omitempty"`
	// Schema, when set on a source's Read, is the schema the engine
	// prepared the stage with: what Schema returned for the same Config.
	// Read must emit batches of exactly this schema (the engine checks
	// it), and a source that infers its schema from its input should use
	// it rather than infer again. It reaches plugin processes too.
	Schema *arrow.Schema `json:"-"`
	// Checkpointed is set when the engine records this stage's positions
	// in checkpoints and resumes from them: Resume is then the whole
	// truth about where to start, and a source must not start from a
	// position stored anywhere else (a Kafka consumer group's committed
	// offsets): a partition absent from Resume starts where the source's
	// options say, and a sink commits only in Checkpointer calls and Close.
	Checkpointed bool `json:"checkpointed,omitempty"`
}

// String returns option name, which Check guarantees is a string or absent.
func (c Config) String(name string) string {
	s, _ := c.Options[name].(string)
	return s
}

// Int returns option name as an int64; JSON numbers (float64) are accepted.
func (c Config) Int(name string) int64 {
	switch v := c.Options[name].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

// Float returns option name as a float64.
func (c Config) Float(name string) float64 {
	switch v := c.Options[name].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return math.NaN()
}

// Bool returns option name as a bool.
func (c Config) Bool(name string) bool {
	b, _ := c.Options[name].(bool)
	return b
}

// StringList returns option name as a list of strings.
func (c Config) StringList(name string) []string {
	switch v := c.Options[name].(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// StringMap returns option name as a map of strings.
func (c Config) StringMap(name string) map[string]string {
	switch v := c.Options[name].(type) {
	case map[string]string:
		return v
	case map[string]any:
		out := make(map[string]string, len(v))
		for k, e := range v {
			if s, ok := e.(string); ok {
				out[k] = s
			}
		}
		return out
	}
	return nil
}

// DeadLetter is one input row that a connector could not turn into a row of
// its output, with the reason. Nothing is dropped silently: the engine
// writes every dead letter to the pipeline's dead-letter output and counts
// it in the run summary.
type DeadLetter struct {
	// Origin names where the row came from: a file path, a topic, a table.
	Origin string `json:"origin"`
	// Line is the 1-based line (or record offset) in Origin, 0 if unknown.
	Line int64 `json:"line,omitempty"`
	// Column names the offending column, "" if the whole row is at fault.
	Column string `json:"column,omitempty"`
	// Reason says what was wrong and what was expected.
	Reason string `json:"reason"`
	// Raw is the row as read, for repair and replay.
	Raw string `json:"raw,omitempty"`
}

func (d DeadLetter) String() string {
	s := d.Origin
	if d.Line > 0 {
		s += fmt.Sprintf(":%d", d.Line)
	}
	if d.Column != "" {
		s += fmt.Sprintf(": column %q", d.Column)
	}
	return s + ": " + d.Reason
}

// Emitter receives what a Source reads. Both methods block while the
// consumer is busy (backpressure) and return an error when the read must
// stop (the run was cancelled or failed); the source then returns it.
type Emitter interface {
	// Emit hands a batch downstream with the source's position after it
	// (see Position; nil if the source cannot resume). The batch is
	// borrowed: Emit retains what it keeps, and the caller still releases
	// rec afterwards. Once Emit returned nil the batch is delivered: after
	// a crash the engine resumes the read from pos.
	Emit(ctx context.Context, rec arrow.RecordBatch, pos Position) error
	// DeadLetter reports rows that could not be read. Dead letters sent
	// before a batch are covered by that batch's position.
	DeadLetter(ctx context.Context, rows []DeadLetter) error
}

// Source reads data from outside into Arrow record batches.
//
// Implementations must be safe for concurrent use by several stages: all
// per-read state belongs to the Read call.
type Source interface {
	Connector
	// Schema returns the schema of the batches Read will emit for cfg.
	// It is called before any data moves, to validate the pipeline.
	Schema(ctx context.Context, cfg Config) (*arrow.Schema, error)
	// Read emits every batch of the input in order and returns nil at its
	// end; with cfg.Resume set, only the batches after that position.
	// Batches are allocated from mem and respect cfg.BatchRows.
	Read(ctx context.Context, cfg Config, mem memory.Allocator, out Emitter) error
}

// Sink writes Arrow record batches to the outside.
type Sink interface {
	Connector
	// Validate checks cfg beyond its spec (a folder that cannot be
	// created, say) before any data moves.
	Validate(ctx context.Context, cfg Config) error
	// Open starts writing batches of the given schema.
	Open(ctx context.Context, cfg Config, mem memory.Allocator, schema *arrow.Schema) (Writer, error)
}

// Writer writes the batches of one run of a sink. It is used by one
// goroutine at a time.
type Writer interface {
	// Write writes a batch. The batch is borrowed: Write retains what it
	// keeps past its return.
	Write(ctx context.Context, rec arrow.RecordBatch) error
	// Close flushes everything written and makes it durable; only rows
	// written before a nil Close are acknowledged.
	Close(ctx context.Context) error
	// Abort discards what it can of an unfinished write and frees
	// resources. Called instead of Close when the run fails.
	Abort(ctx context.Context) error
}

// Flusher is implemented by Writers that can make their progress durable
// before Close. After Flush returned nil, every row written so far
// survives a crash of the connector's process, and Sink.Open with
// Config.Resume set to the returned position continues the output as if
// exactly those rows had been written (the rows written since are
// discarded). The engine calls Flush periodically and replays, after a
// crash, only the batches written after the last flush. A Writer that is
// not a Flusher (or returns a nil position) is durable only at Close: after
// a crash the engine starts its output over and replays every batch.
type Flusher interface {
	Flush(ctx context.Context) (Position, error)
}

// DeadLetterCounter is implemented by Writers that keep dead letters of
// their own, rows they accepted but gave up on (the webhook sink's
// outbox dead_letters.jsonl: changes its endpoint refused for good).
// DeadLettered returns how many rows the writer dead-lettered since it
// was opened; the engine reads it once the writer closed or aborted and
// counts them as the sink stage's dead letters in the run summary (they
// are not written to the pipeline's dead letter file). Across the plugin
// boundary it travels with the sink's final acknowledgement.
type DeadLetterCounter interface {
	DeadLettered() int64
}

// Checkpoint is the engine's record of one consistent cut of a continuous
// run: its id (increasing over the runs of a pipeline) and what the engine
// needs to resume from it (source and sink positions), opaque to sinks.
type Checkpoint struct {
	ID   uint64          `json:"id"`
	Data json.RawMessage `json:"data"`
}

// Checkpointer is implemented by the Writers of sinks whose Spec sets
// Checkpoints. FlushCheckpoint is Flusher.Flush that also records cp, in
// one atomic step with every row written so far: after a crash, the
// connector's CheckpointSink.LastCheckpoint returns cp exactly when those
// rows are part of the output.
type Checkpointer interface {
	FlushCheckpoint(ctx context.Context, cp Checkpoint) (Position, error)
}

// CheckpointSink is implemented by sinks whose Spec sets Checkpoints.
// LastCheckpoint fences any earlier writer of the same stage (a crashed
// run's open output is discarded) and returns the last checkpoint a
// Checkpointer committed for cfg's pipeline and stage, nil if none.
type CheckpointSink interface {
	LastCheckpoint(ctx context.Context, cfg Config) (*Checkpoint, error)
}

// Registry is an immutable set of connectors by name.
type Registry struct {
	byName map[string]Connector
	names  []string
}

// NewRegistry returns a registry of cs. It panics on a duplicate name, which
// is a programming error.
func NewRegistry(cs ...Connector) *Registry {
	r := &Registry{byName: make(map[string]Connector, len(cs))}
	for _, c := range cs {
		name := c.Spec().Name
		if _, dup := r.byName[name]; dup {
			panic(fmt.Sprintf("protocol: duplicate connector %q", name))
		}
		r.byName[name] = c
		r.names = append(r.names, name)
	}
	return r
}

// Get returns the connector called name.
func (r *Registry) Get(name string) (Connector, error) {
	c, ok := r.byName[name]
	if !ok {
		msg := fmt.Sprintf("unknown connector %q%s", name, suggest.DidYouMean(name, r.names))
		return nil, WithKind(errors.New(msg), ErrNotFound)
	}
	return c, nil
}

// Names returns the connectors' names in registration order.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// Specs returns every connector's spec in registration order.
func (r *Registry) Specs() []Spec {
	out := make([]Spec, len(r.names))
	for i, n := range r.names {
		out[i] = r.byName[n].Spec()
	}
	return out
}
