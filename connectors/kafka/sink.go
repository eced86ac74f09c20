package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Sink option names.
const (
	optTopic     = "topic"
	optKeyColumn = "key_column"
	optTxnID     = "transactional_id"
	optCpTopic   = "checkpoint_topic"
	optPartCol   = "partition_column"
	optOffCol    = "offset_column"
	optTxnTime   = "transaction_timeout"
)

// Provenance headers every message carries, besides the batch schema's
// "vigie.*" metadata (the rule's name, version and module sha256).
const (
	headerPipeline = "vigie.pipeline"
	headerStage    = "vigie.stage"
	metaPrefix     = "vigie."
)

// Sink is the Kafka sink, registered as "kafka_topic". It is stateless and
// safe for concurrent use.
type Sink struct{}

var _ protocol.Sink = Sink{}

var sinkSpec = protocol.Spec{
	Name:    SinkName,
	Kind:    protocol.KindSink,
	Version: "0.1.0",
	Doc: `Connector "kafka_topic" (sink): writes each row as one message to a Kafka
topic, its value a JSON object of the row's columns (dates as yyyy-mm-dd,
timestamps as ISO 8601 strings, nulls as null). The key_column's value is
the message key, so that the rows of one student go to one partition (Kafka's
murmur2 partitioning, as the Java client does); without it messages are
spread. Every message carries the headers vigie.pipeline, vigie.stage and
the batch's vigie.* metadata (the rule's name, version and module sha256).
Messages are written in transactions (transactional_id): a flush commits
what was written since the previous one, and opening the sink again with
the same id aborts what a crashed writer left uncommitted, so consumers
reading with read_committed see every row once. In a continuous run the
sink is the commit point of the engine's checkpoints: it commits only at a
checkpoint, and the checkpoint record (source positions, checkpoint id) goes
to checkpoint_topic in the same transaction as the rows; a restarted run
fences the killed one's transaction and resumes from the last committed
record.`,
	Options: append([]protocol.Option{
		{Name: optTopic, Type: protocol.TypeString, Required: true, Doc: "topic to write to"},
		{Name: optKeyColumn, Type: protocol.TypeString, Doc: "column whose value is the message key (default: no key)"},
		{Name: optTxnID, Type: protocol.TypeString, Doc: "transactional id (default: vigie.PIPELINE.STAGE); one writer at a time per id"},
		{Name: optCpTopic, Type: protocol.TypeString, Doc: "compacted topic of the checkpoint records, keyed by transactional id (default: PIPELINE.checkpoints; created when missing)"},
		{Name: optPartCol, Type: protocol.TypeString, Doc: "column holding each row's input partition (the kafka source's kafka_partition, with partitioned_by): one transaction and checkpoint record per input partition, transactional id vigie.PIPELINE.p<N>, for several instances in one consumer group"},
		{Name: optTxnTime, Type: protocol.TypeString, Default: defaultTxnTimeout, Doc: "how long a transaction may stay open before the brokers abort it (at most their transaction.max.timeout.ms, 15 minutes by default): it must cover a checkpoint_interval plus the time a checkpoint takes to drain the rows in flight, which a slow per-row rule on a loaded machine stretches to tens of seconds; past it the commit fails (INVALID_PRODUCER_EPOCH) and the run restarts from its last checkpoint"},
		{Name: optOffCol, Type: protocol.TypeString, Doc: "with partition_column: column holding each row's input offset (kafka_offset, or arrival_seq behind a per-row group rule); rows below their partition's last committed checkpoint record are dropped, so a partition replayed to restore its state (source restore = \"replay\") writes only what was not committed yet"},
	}, connectionOptions...),
	Checkpoints: true,
}

// Spec describes the connector and its options.
func (Sink) Spec() protocol.Spec { return sinkSpec }

func checkSink(cfg protocol.Config) (protocol.Config, []kgo.Opt, error) {
	opts, err := sinkSpec.Check(cfg.Options)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Options = opts
	if cfg.Connector == "" {
		cfg.Connector = SinkName
	}
	if cfg.String(optTopic) == "" {
		return cfg, nil, configError(cfg.Connector, optTopic, "name the topic")
	}
	if cfg.String(optPartCol) != "" {
		for _, o := range []string{optTxnID, optCpTopic} {
			if cfg.String(o) != "" {
				return cfg, nil, configError(cfg.Connector, o, "cannot be set with %s (the ids are vigie.PIPELINE.p<N>, the records go to PIPELINE.checkpoints, where the source reads them)", optPartCol)
			}
		}
	} else if cfg.String(optOffCol) != "" {
		return cfg, nil, configError(cfg.Connector, optOffCol, "needs %s", optPartCol)
	}
	timeout, err := time.ParseDuration(cfg.String(optTxnTime))
	if err != nil || timeout < time.Second {
		return cfg, nil, configError(cfg.Connector, optTxnTime, "expected a duration of at least 1s, such as \"2m\", got %q", cfg.String(optTxnTime))
	}
	conn, err := connection(cfg, os.Getenv)
	if err != nil {
		return cfg, nil, err
	}
	// Every transactional client of the sink (its writers and the
	// fencing ones) sets the timeout at its InitProducerID.
	return cfg, append(conn, kgo.TransactionTimeout(timeout)), nil
}

// txnTimeout returns the transaction_timeout option of a checked cfg.
func txnTimeout(cfg protocol.Config) time.Duration {
	d, _ := time.ParseDuration(cfg.String(optTxnTime))
	return d
}

// explainTimeout adds to err, when it is the epoch error a producer gets
// once the brokers aborted its transaction for its age (opened is when
// the transaction got its first row), how long it was open and the
// option that bounds it.
func explainTimeout(err error, opened time.Time, timeout time.Duration) error {
	if err == nil || opened.IsZero() || time.Since(opened) < timeout ||
		!errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) {
		return err
	}
	return fmt.Errorf("%w (the transaction was open for %s, longer than the sink's transaction_timeout of %s, and the brokers aborted it: raise transaction_timeout, or shorten what a checkpoint covers: checkpoint_interval, batch_rows)",
		err, time.Since(opened).Round(time.Millisecond), timeout)
}

// defaultTxnTimeout is the transaction_timeout option's default: three
// times franz-go's 40 s, which a checkpoint of the per-row early-warning
// pack exceeded on a loaded machine (RATIONALE.md).
const defaultTxnTimeout = "2m"

// Validate checks the options, the TLS files and the SASL environment.
func (Sink) Validate(ctx context.Context, cfg protocol.Config) error {
	_, _, err := checkSink(cfg)
	return err
}

// sinkPosition is what a flush returns: how many flushes committed.
type sinkPosition struct {
	Flushes int64 `json:"flushes"`
	// Own (partition_column) is, per input partition, the offset in the
	// checkpoint topic of the last record this stage's writers committed
	// in this run: a writer opened again after a failure knows its own.
	Own map[int32]int64 `json:"own,omitempty"`
}

// Open starts a transactional producer. Its transactional id fences any
// earlier writer with the same id, aborting what that one left open.
func (Sink) Open(ctx context.Context, cfg protocol.Config, mem memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	cfg, conn, err := checkSink(cfg)
	if err != nil {
		return nil, err
	}
	key := -1
	if name := cfg.String(optKeyColumn); name != "" {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			return nil, configError(cfg.Connector, optKeyColumn, "no column %q in the input (columns: %s)", name, strings.Join(fieldNames(schema), ", "))
		}
		key = idx[0]
	}
	var from sinkPosition
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return nil, err
		}
	}
	if name := cfg.String(optPartCol); name != "" {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			return nil, configError(cfg.Connector, optPartCol, "no column %q in the input (columns: %s)", name, strings.Join(fieldNames(schema), ", "))
		}
		switch schema.Field(idx[0]).Type.ID() {
		case arrow.INT32, arrow.INT64:
		default:
			return nil, configError(cfg.Connector, optPartCol, "column %q is %s, want int32 or int64", name, schema.Field(idx[0]).Type)
		}
		off := -1
		if name := cfg.String(optOffCol); name != "" {
			oi := schema.FieldIndices(name)
			if len(oi) != 1 {
				return nil, configError(cfg.Connector, optOffCol, "no column %q in the input (columns: %s)", name, strings.Join(fieldNames(schema), ", "))
			}
			switch schema.Field(oi[0]).Type.ID() {
			case arrow.INT32, arrow.INT64:
			default:
				return nil, configError(cfg.Connector, optOffCol, "column %q is %s, want int32 or int64", name, schema.Field(oi[0]).Type)
			}
			off = oi[0]
		}
		if from.Own == nil {
			from.Own = map[int32]int64{}
		}
		return &partitionWriter{conn: conn, topic: cfg.String(optTopic), cpTopic: checkpointTopic(cfg), pipeline: cfg.Pipeline, timeout: txnTimeout(cfg),
			key: key, part: idx[0], off: off, headers: provenance(cfg, schema), parts: map[int32]*partProducer{}, own: from.Own, flushes: from.Flushes,
			log: slog.Default().With("connector", cfg.Connector, "stage", cfg.Stage)}, nil
	}
	txnID := transactionalID(cfg)
	cl, err := kgo.NewClient(append(conn,
		kgo.DefaultProduceTopic(cfg.String(optTopic)),
		kgo.TransactionalID(txnID),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
	}
	// Loading the producer id is what fences an earlier writer.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("init transactional producer %q: %w", txnID, protocol.WithKind(err, protocol.ErrTemporary))
	}
	w := &writer{cl: cl, key: key, flushes: from.Flushes, headers: provenance(cfg, schema), txnID: txnID, cpTopic: checkpointTopic(cfg), timeout: txnTimeout(cfg)}
	if err := cl.BeginTransaction(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	return w, nil
}

// transactionalID is the sink's transactional id: stable across the runs of
// a pipeline stage, so that a new run fences the previous one.
func transactionalID(cfg protocol.Config) string {
	if id := cfg.String(optTxnID); id != "" {
		return id
	}
	return "vigie." + cfg.Pipeline + "." + cfg.Stage
}

func checkpointTopic(cfg protocol.Config) string {
	if t := cfg.String(optCpTopic); t != "" {
		return t
	}
	return cfg.Pipeline + ".checkpoints"
}

func fieldNames(s *arrow.Schema) []string {
	out := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		out[i] = f.Name
	}
	return out
}

// provenance returns the headers every message of the run carries.
func provenance(cfg protocol.Config, schema *arrow.Schema) []kgo.RecordHeader {
	hs := []kgo.RecordHeader{
		{Key: headerPipeline, Value: []byte(cfg.Pipeline)},
		{Key: headerStage, Value: []byte(cfg.Stage)},
	}
	md := schema.Metadata()
	for i, k := range md.Keys() {
		if strings.HasPrefix(k, metaPrefix) {
			hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(md.Values()[i])})
		}
	}
	return hs
}

// writer writes one run of the sink, in transactions.
type writer struct {
	cl      *kgo.Client
	key     int
	headers []kgo.RecordHeader
	flushes int64
	txnID   string
	cpTopic string
	// timeout is the transaction timeout; opened is when the open
	// transaction got its first row (zero: none yet).
	timeout time.Duration
	opened  time.Time

	perr firstErr // first produce error since the last flush
}

var (
	_ protocol.Writer       = (*writer)(nil)
	_ protocol.Flusher      = (*writer)(nil)
	_ protocol.Checkpointer = (*writer)(nil)
)

// Write produces one message per row into the open transaction.
func (w *writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := w.produceErr(); err != nil {
		return err
	}
	if w.opened.IsZero() && rec.NumRows() > 0 {
		w.opened = time.Now()
	}
	enc := newRowEncoder(rec, w.key, w.headers)
	for i := range int(rec.NumRows()) {
		r, err := enc.record(i)
		if err != nil {
			return err
		}
		w.cl.Produce(ctx, r, w.perr.promise)
	}
	return nil
}

func (w *writer) produceErr() error {
	if err := w.perr.get(); err != nil {
		return fmt.Errorf("produce: %w", explainTimeout(err, w.opened, w.timeout))
	}
	return nil
}

// firstErr keeps the first error a producer's promises report (they run
// on the client's goroutines).
type firstErr struct {
	mu  sync.Mutex
	err error
}

// promise is a kgo produce promise recording the first error.
func (f *firstErr) promise(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstErr) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// rowEncoder turns the rows of one batch into records: the row as a JSON
// object (no trailing newline), the key column's value as the key (none
// when null or key < 0), the sink's headers.
type rowEncoder struct {
	rec     arrow.RecordBatch
	fields  []arrow.Field
	key     int
	headers []kgo.RecordHeader
	row     map[string]any
	buf     bytes.Buffer
	enc     *json.Encoder
}

func newRowEncoder(rec arrow.RecordBatch, key int, headers []kgo.RecordHeader) *rowEncoder {
	fields := rec.Schema().Fields()
	e := &rowEncoder{rec: rec, fields: fields, key: key, headers: headers, row: make(map[string]any, len(fields))}
	e.enc = json.NewEncoder(&e.buf)
	return e
}

func (e *rowEncoder) record(i int) (*kgo.Record, error) {
	for j, c := range e.rec.Columns() {
		e.row[e.fields[j].Name] = c.GetOneForMarshal(i)
	}
	e.buf.Reset()
	if err := e.enc.Encode(e.row); err != nil {
		return nil, fmt.Errorf("encode row %d as JSON: %w", i, err)
	}
	r := &kgo.Record{Value: bytes.TrimSuffix(bytes.Clone(e.buf.Bytes()), []byte("\n")), Headers: e.headers}
	if e.key >= 0 {
		if kc := e.rec.Column(e.key); !kc.IsNull(i) {
			r.Key = []byte(kc.ValueStr(i))
		}
	}
	return r, nil
}

// Flush commits the transaction holding everything written since the
// previous flush and begins the next one.
func (w *writer) Flush(ctx context.Context) (protocol.Position, error) {
	if err := w.commit(ctx); err != nil {
		return nil, err
	}
	if err := w.cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	return protocol.NewPosition(sinkPosition{Flushes: w.flushes})
}

// FlushCheckpoint is Flush with cp written to the checkpoint topic in the
// same transaction as the rows: the record is visible to read_committed
// readers (LastCheckpoint) exactly when the rows are.
func (w *writer) FlushCheckpoint(ctx context.Context, cp protocol.Checkpoint) (protocol.Position, error) {
	v, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	w.cl.Produce(ctx, &kgo.Record{Topic: w.cpTopic, Key: []byte(w.txnID), Value: v}, w.perr.promise)
	return w.Flush(ctx)
}

func (w *writer) commit(ctx context.Context) error {
	if err := w.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush produced messages: %w", err)
	}
	if err := w.produceErr(); err != nil {
		w.cl.EndTransaction(ctx, kgo.TryAbort)
		return err
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit transaction: %w", protocol.WithKind(explainTimeout(err, w.opened, w.timeout), protocol.ErrTemporary))
	}
	w.opened = time.Time{}
	w.flushes++
	return nil
}

// Close commits what was written and closes the producer.
func (w *writer) Close(ctx context.Context) error {
	defer w.cl.Close()
	return w.commit(ctx)
}

// Abort aborts the open transaction and closes the producer.
func (w *writer) Abort(ctx context.Context) error {
	defer w.cl.Close()
	err := w.cl.AbortBufferedRecords(ctx)
	if eerr := w.cl.EndTransaction(ctx, kgo.TryAbort); eerr != nil && err == nil {
		err = eerr
	}
	if err != nil {
		return fmt.Errorf("abort transaction: %w", err)
	}
	return nil
}
