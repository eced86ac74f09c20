package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/internal/jsonrow"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// Source option names and values.
const (
	optTopics     = "topics"
	optGroup      = "group"
	optStart      = "start"
	optMetadata   = "metadata"
	optStopAtEnd  = "stop_at_end"
	optMaxDelay   = "max_delay"
	optIsolation  = "isolation"
	optOnError    = "on_error"
	optPartBy     = "partitioned_by"
	optSession    = "session_timeout"
	optRestore    = "restore"
	restoreNone   = "none"
	restoreReplay = "replay"
	startEarliest = "earliest"
	startLatest   = "latest"
	readCommitted = "read_committed"
	readUncommit  = "read_uncommitted"
	onErrorDead   = "dead_letter"
	onErrorSkip   = "skip"
	onErrorFail   = "fail"
	// maxRaw is the most bytes of a message value kept in a dead letter.
	maxRaw = 64 << 10
	// commitTimeout bounds a group offset commit.
	commitTimeout = 10 * time.Second
	// revokeWait bounds how long a revoked partition waits for the
	// checkpoint that covers what was read of it (well under the group's
	// default 60s rebalance timeout).
	revokeWait = 20 * time.Second
	// fetchErrorGrace is how long a member of a scale-out group keeps
	// polling through fetch errors.
	fetchErrorGrace = time.Minute
)

// Metadata columns: what `metadata` may list, and the column each adds
// after the declared ones.
var metaColumns = []struct {
	name, column string
	typ          arrow.DataType
}{
	{"key", "kafka_key", arrow.BinaryTypes.String},
	{"topic", "kafka_topic", arrow.BinaryTypes.String},
	{"partition", "kafka_partition", arrow.PrimitiveTypes.Int32},
	{"offset", "kafka_offset", arrow.PrimitiveTypes.Int64},
	{"timestamp", "kafka_timestamp", arrow.FixedWidthTypes.Timestamp_us},
}

func metaNames() []string {
	var out []string
	for _, m := range metaColumns {
		out = append(out, m.name)
	}
	return out
}

// Source is the Kafka source, registered as "kafka". It is stateless and
// safe for concurrent use.
type Source struct{}

var _ protocol.Source = Source{}

var sourceSpec = protocol.Spec{
	Name:      SourceName,
	Kind:      protocol.KindSource,
	Version:   "0.1.0",
	Unbounded: true,
	Doc: `Connector "kafka" (source): reads Kafka topics, each message value a JSON
object decoded into the declared columns. ` + jsonrow.TypesDoc + ` metadata
adds kafka_key (utf8), kafka_topic, kafka_partition, kafka_offset and
kafka_timestamp (the record's timestamp) after them. A message whose value
does not fit goes per on_error to the dead-letter output (origin
topic/partition, line = the offset, with the field and the reason), is
skipped, or fails the read. Batches leave at batch_rows rows or max_delay
after their first row. Without group every partition of the topics is read;
with group the topics are read as a member of that consumer group, which
commits the offsets of each batch handed to the engine (in a run with
checkpoints, for lag monitoring only: the engine's checkpoint, not the
group, says where a restarted run starts). A batch's position
is the next offset of every partition read, so the engine resumes exactly
after it. Reads until stopped, or with stop_at_end up to the end offsets
the read started with. Transactions: read_committed by default.

With group and partitioned_by, several instances of the pipeline share the
topic's partitions (cooperative-sticky rebalancing) with checkpoints per
partition: the kafka_topic sink must set partition_column to the
kafka_partition column (metadata "partition"). On assignment a partition's
transactional id (vigie.PIPELINE.p<N>) is fenced and the partition starts
at its last committed checkpoint record in PIPELINE.checkpoints; on revoke
it stops and waits for the checkpoint covering what it handed to the
engine. partitioned_by names the column the producers key messages by (the
student): vigie validate refuses group rules keyed otherwise. One topic
only.`,
	Options: append([]protocol.Option{
		{Name: optTopics, Type: protocol.TypeStringList, Required: true, Doc: "topics to read"},
		{Name: optGroup, Type: protocol.TypeString, Doc: "consumer group to read as a member of (default: none, every partition is read)"},
		{Name: optStart, Type: protocol.TypeString, Default: startEarliest, Enum: []string{startEarliest, startLatest},
			Doc: "where a partition without a committed offset (or any partition, without group) starts"},
		{Name: jsonrow.OptColumns, Type: protocol.TypeStringMap, Required: true, Doc: jsonrow.ColumnsDoc},
		{Name: jsonrow.OptOrder, Type: protocol.TypeStringList, Doc: jsonrow.OrderDoc},
		{Name: jsonrow.OptStrict, Type: protocol.TypeBool, Default: false, Doc: jsonrow.StrictDoc},
		{Name: optMetadata, Type: protocol.TypeStringList, Doc: "Kafka metadata to add as columns: any of key, topic, partition, offset, timestamp"},
		{Name: optOnError, Type: protocol.TypeString, Default: onErrorDead, Enum: []string{onErrorDead, onErrorSkip, onErrorFail},
			Doc: "what to do with a message whose value does not fit the columns"},
		{Name: optMaxDelay, Type: protocol.TypeString, Doc: "longest a row waits for its batch to fill (a Go duration); overrides the pipeline's max_delay for this source"},
		{Name: optStopAtEnd, Type: protocol.TypeBool, Default: false, Doc: "stop at the end offsets the read started with (without group only)"},
		{Name: optIsolation, Type: protocol.TypeString, Default: readCommitted, Enum: []string{readCommitted, readUncommit},
			Doc: "whether records of aborted or open transactions are read"},
		{Name: optSession, Type: protocol.TypeString,
			Doc: "with group: how long the group waits for a silent member before giving its partitions to the others (a Go duration; default 45s; heartbeats every third of it, at most 3s). Shorter fails over faster; the brokers' group.min.session.timeout.ms bounds it"},
		{Name: optPartBy, Type: protocol.TypeString,
			Doc: "column the messages are keyed (so partitioned) by; with group, per-partition checkpoints for several instances in one group (scale-out)"},
		{Name: optRestore, Type: protocol.TypeString, Default: restoreNone, Enum: []string{restoreNone, restoreReplay},
			Doc: "with partitioned_by: how a newly assigned partition's keyed state is restored. none: it starts at its checkpoint record (stateless pipelines); replay: it starts at its earliest retained offset, so per-row group rules and alerts stages rebuild the partition's state, and the kafka_topic sink (offset_column) drops the rows its checkpoint record already covers"},
	}, connectionOptions...),
}

// Spec describes the connector and its options.
func (Source) Spec() protocol.Spec { return sourceSpec }

// sourcePlan is a checked source configuration.
type sourcePlan struct {
	cfg       protocol.Config
	topics    []string
	cols      *jsonrow.Columns
	meta      []int // indices in metaColumns, in output order
	schema    *arrow.Schema
	maxDelay  time.Duration
	batchRows int
	session   time.Duration // group session timeout, 0: franz-go's default
}

func newSourcePlan(cfg protocol.Config) (*sourcePlan, error) {
	opts, err := sourceSpec.Check(cfg.Options)
	if err != nil {
		return nil, err
	}
	cfg.Options = opts
	if cfg.Connector == "" {
		cfg.Connector = SourceName
	}
	cols, err := jsonrow.New(cfg.Connector, cfg.StringMap(jsonrow.OptColumns), cfg.StringList(jsonrow.OptOrder), cfg.Bool(jsonrow.OptStrict))
	if err != nil {
		return nil, err
	}
	p := &sourcePlan{cfg: cfg, topics: cfg.StringList(optTopics), cols: cols, batchRows: cfg.BatchRows}
	if len(p.topics) == 0 {
		return nil, configError(cfg.Connector, optTopics, "name at least one topic")
	}
	if p.batchRows <= 0 {
		p.batchRows = protocol.DefaultBatchRows
	}
	p.maxDelay = cfg.MaxDelay
	if p.maxDelay <= 0 {
		p.maxDelay = protocol.DefaultMaxDelay
	}
	if d := cfg.String(optMaxDelay); d != "" {
		if p.maxDelay, err = time.ParseDuration(d); err != nil || p.maxDelay <= 0 {
			return nil, configError(cfg.Connector, optMaxDelay, "expected a positive duration such as \"200ms\", got %q", d)
		}
	}
	if cfg.Bool(optStopAtEnd) && cfg.String(optGroup) != "" {
		return nil, configError(cfg.Connector, optStopAtEnd, "cannot be used with group (a member reads only the partitions the group assigns it)")
	}
	fields := cols.Fields()
	for _, m := range cfg.StringList(optMetadata) {
		i := slices.IndexFunc(metaColumns, func(c struct {
			name, column string
			typ          arrow.DataType
		}) bool {
			return c.name == m
		})
		if i < 0 {
			return nil, configError(cfg.Connector, optMetadata, "unknown metadata %q: allowed are %v", m, metaNames())
		}
		if slices.Contains(p.meta, i) {
			return nil, configError(cfg.Connector, optMetadata, "%q listed twice", m)
		}
		for _, f := range fields {
			if f.Name == metaColumns[i].column {
				return nil, configError(cfg.Connector, optMetadata, "column %q is also declared in columns", f.Name)
			}
		}
		p.meta = append(p.meta, i)
		fields = append(fields, arrow.Field{Name: metaColumns[i].column, Type: metaColumns[i].typ, Nullable: true})
	}
	p.schema = arrow.NewSchema(fields, nil)
	if d := cfg.String(optSession); d != "" {
		if cfg.String(optGroup) == "" {
			return nil, configError(cfg.Connector, optSession, "needs group")
		}
		if p.session, err = time.ParseDuration(d); err != nil || p.session <= 0 {
			return nil, configError(cfg.Connector, optSession, "expected a positive duration such as \"10s\", got %q", d)
		}
	}
	if by := cfg.String(optPartBy); by != "" {
		if cfg.String(optGroup) == "" {
			return nil, configError(cfg.Connector, optPartBy, "needs group (the instances sharing the partitions are members of one group)")
		}
		if len(p.topics) != 1 {
			return nil, configError(cfg.Connector, optPartBy, "reads one topic only, got %v", p.topics)
		}
		if len(p.schema.FieldIndices(by)) != 1 {
			return nil, configError(cfg.Connector, optPartBy, "no column %q", by)
		}
		if !slices.ContainsFunc(p.meta, func(i int) bool { return metaColumns[i].name == "partition" }) {
			return nil, configError(cfg.Connector, optPartBy, "needs metadata \"partition\" (the sink routes each row to its input partition's transaction)")
		}
	}
	if cfg.String(optRestore) == restoreReplay {
		if cfg.String(optPartBy) == "" {
			return nil, configError(cfg.Connector, optRestore, "replay needs partitioned_by (it restores a partition moved between instances of one group)")
		}
		if !slices.ContainsFunc(p.meta, func(i int) bool { return metaColumns[i].name == "offset" }) {
			return nil, configError(cfg.Connector, optRestore, "replay needs metadata \"offset\" (the sink drops the replayed rows by their input offset)")
		}
	}
	return p, nil
}

// Schema returns the declared columns and then the metadata columns.
func (Source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	p, err := newSourcePlan(cfg)
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

// offsets are the next offset to read of each partition read so far, by
// topic then partition: a source position.
type offsets map[string]map[int32]int64

func (o offsets) set(topic string, partition int32, next int64) {
	ps := o[topic]
	if ps == nil {
		ps = map[int32]int64{}
		o[topic] = ps
	}
	ps[partition] = next
}

// sourcePosition is what a batch's position holds.
type sourcePosition struct {
	Offsets offsets `json:"offsets"`
	// Since (scale-out) is, per input partition this reader took from
	// the group, the offset of the checkpoint topic after the records it
	// read then: a record of the partition from there on was written
	// after this instance took it (the sink's checkOwner).
	Since map[int32]int64 `json:"since,omitempty"`
}

// Read emits the topics' messages in batches (see the spec's doc).
func (Source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	p, err := newSourcePlan(cfg)
	if err != nil {
		return err
	}
	from := sourcePosition{Offsets: offsets{}}
	if cfg.Resume != nil {
		if err := protocol.DecodePosition(cfg.Resume, &from); err != nil {
			return err
		}
		if from.Offsets == nil {
			from.Offsets = offsets{}
		}
	}
	conn, err := connection(p.cfg, os.Getenv)
	if err != nil {
		return err
	}
	r := &reader{sourcePlan: p, pos: from.Offsets, log: slog.Default().With("connector", cfg.Connector, "stage", cfg.Stage)}
	opts := append(conn, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if p.cfg.String(optIsolation) == readUncommit {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	}
	reset := kgo.NewOffset().AtStart()
	if p.cfg.String(optStart) == startLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	if group := p.cfg.String(optGroup); group != "" {
		opts = append(opts,
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(p.topics...),
			kgo.ConsumeResetOffset(reset),
			kgo.DisableAutoCommit(),
			// The engine's position wins over the group's committed
			// offsets: it is what the engine has received.
			kgo.AdjustFetchOffsetsFn(func(_ context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
				for t, ps := range assigned {
					for part := range ps {
						if next, ok := from.Offsets[t][part]; ok {
							ps[part] = kgo.NewOffset().At(next).WithEpoch(-1)
						} else if cfg.Checkpointed {
							// The group's offsets may be ahead of the
							// engine's last checkpoint (they are committed
							// per batch, for lag monitoring only).
							ps[part] = reset
						}
					}
				}
				return assigned, nil
			}),
		)
		r.group = true
		if p.session > 0 {
			opts = append(opts, kgo.SessionTimeout(p.session), kgo.HeartbeatInterval(min(3*time.Second, p.session/3)))
		}
		if p.cfg.String(optPartBy) != "" {
			sc, err := newScaleOut(ctx, r, conn, reset)
			if err != nil {
				return err
			}
			defer sc.cp.close()
			// Positions come from the per-partition records, not from
			// the engine's checkpoint (a later option replaces the
			// AdjustFetchOffsetsFn above).
			opts = append(opts, kgo.AdjustFetchOffsetsFn(sc.assigned), kgo.OnPartitionsRevoked(sc.revoked), kgo.OnPartitionsLost(sc.lost))
		}
	} else {
		// Without a group every partition is read, from the position or
		// the start option; stop_at_end needs the end offsets.
		admin, err := kgo.NewClient(conn...)
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		ends, err := listEnds(ctx, kadm.NewClient(admin), p)
		admin.Close()
		if err != nil {
			return err
		}
		parts := map[string]map[int32]kgo.Offset{}
		for t, ps := range ends {
			parts[t] = map[int32]kgo.Offset{}
			for part := range ps {
				o := reset
				if next, ok := from.Offsets[t][part]; ok {
					o = kgo.NewOffset().At(next)
				} else if p.cfg.String(optStart) == startLatest {
					// The end listed, not the one at the client's start:
					// the position then says exactly where the read began.
					o = kgo.NewOffset().At(ends[t][part])
					r.pos.set(t, part, ends[t][part])
				}
				parts[t][part] = o
			}
		}
		opts = append(opts, kgo.ConsumePartitions(parts))
		if p.cfg.Bool(optStopAtEnd) {
			r.ends = ends
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
	}
	defer cl.Close()
	r.cl = cl
	r.bt = sdk.NewBatcher(mem, p.schema, p.batchRows, &committer{Emitter: out, r: r}, r.position())
	defer r.bt.Release()
	r.bt.SetMaxDelay(p.maxDelay)
	err = r.run(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed != nil {
		err = r.failed // not the cancellation that ended the poll
	}
	return err
}

// listEnds returns every partition of the topics with its end offset: the
// last stable offset for read_committed (what can be read now), else the
// high watermark.
func listEnds(ctx context.Context, adm *kadm.Client, p *sourcePlan) (offsets, error) {
	list := adm.ListCommittedOffsets
	if p.cfg.String(optIsolation) == readUncommit {
		list = adm.ListEndOffsets
	}
	listed, err := list(ctx, p.topics...)
	if err == nil {
		for _, t := range p.topics {
			for _, o := range listed[t] {
				if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
					return nil, fmt.Errorf("connector %q: topic %q does not exist: %w", p.cfg.Connector, t, protocol.ErrNotFound)
				}
			}
		}
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list partitions of %v: %w", p.topics, protocol.WithKind(err, protocol.ErrTemporary))
	}
	ends := offsets{}
	listed.Each(func(o kadm.ListedOffset) { ends.set(o.Topic, o.Partition, o.Offset) })
	for _, t := range p.topics {
		if _, ok := ends[t]; !ok {
			return nil, fmt.Errorf("connector %q: topic %q does not exist: %w", p.cfg.Connector, t, protocol.ErrNotFound)
		}
	}
	return ends, nil
}

// reader is one Read's state.
type reader struct {
	*sourcePlan
	cl    *kgo.Client
	bt    *sdk.Batcher
	group bool
	ends  offsets // stop_at_end: where to stop
	vals  []sdk.Cell
	log   *slog.Logger

	// mu guards pos and the scale-out fields, which the group's
	// callbacks read and change in their own goroutine.
	mu  sync.Mutex
	pos offsets // next offset of each partition, after what was batched
	// scale-out (group and partitioned_by): the partitions owned now,
	// the next offset after the last data record of each handed to the
	// batcher, and why the run must stop (partitions lost).
	owned   map[int32]bool
	dataPos map[int32]int64
	since   map[int32]int64 // see sourcePosition.Since
	failed  error
	closing bool
	stop    context.CancelFunc // ends run's polls, set by run
	// errSince is when fetches began failing (scale-out: retried for
	// fetchErrorGrace before the read fails).
	errSince time.Time
}

// position is the batch position to hand the batcher: the offsets,
// encoded under mu when the group's callbacks may change them.
func (r *reader) position() any {
	if r.owned == nil {
		return sourcePosition{Offsets: r.pos}
	}
	return lockedPosition{r}
}

type lockedPosition struct{ r *reader }

func (l lockedPosition) MarshalJSON() ([]byte, error) {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return json.Marshal(sourcePosition{Offsets: l.r.pos, Since: l.r.since})
}

// done reports whether stop_at_end has reached every end.
func (r *reader) done() bool {
	if r.ends == nil {
		return false
	}
	for t, ps := range r.ends {
		for part, end := range ps {
			if end > 0 && r.pos[t][part] < end {
				return false
			}
		}
	}
	return true
}

func (r *reader) run(ctx context.Context) error {
	r.vals = make([]sdk.Cell, r.cols.Len())
	parent := ctx
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	r.mu.Lock()
	r.stop = stop
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.closing = true
		r.mu.Unlock()
	}()
	for {
		if r.done() {
			return r.flush(ctx)
		}
		if r.owned != nil {
			r.mu.Lock()
			err := r.failed
			r.mu.Unlock()
			if err != nil {
				return err
			}
		}
		// A poll waits no longer than the pending batch's due time
		// (max_delay after its first row or dead letter).
		pctx, cancel := ctx, context.CancelFunc(func() {})
		due, pending := r.bt.Deadline()
		if pending {
			pctx, cancel = context.WithDeadline(ctx, due)
		}
		fs := r.cl.PollRecords(pctx, r.batchRows-r.bt.Rows())
		expired := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			if parent.Err() == nil {
				r.mu.Lock()
				err = r.failed
				r.mu.Unlock()
			}
			return err
		}
		for _, fe := range fs.Errors() {
			if expired && errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			if r.owned != nil && (r.errSince.IsZero() || time.Since(r.errSince) < fetchErrorGrace) {
				// A member that ended its Read would leave the group and
				// fence its own partitions when the engine retries it:
				// franz-go retries the fetch, the read goes on.
				if r.errSince.IsZero() {
					r.errSince = time.Now()
				}
				r.log.Warn("fetch failed, retrying", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
				continue
			}
			return fmt.Errorf("read topic %s partition %d: %w", fe.Topic, fe.Partition, protocol.WithKind(fe.Err, protocol.ErrTemporary))
		}
		if len(fs.Errors()) == 0 {
			r.errSince = time.Time{}
		}
		for it := fs.RecordIter(); !it.Done(); {
			if err := r.record(ctx, it.Next()); err != nil {
				return err
			}
		}
		// Dead letters wait no longer than rows: a tail of bad messages
		// is reported, with a position past it, within max_delay.
		if due, ok := r.bt.Deadline(); ok && (expired || !time.Now().Before(due)) {
			if err := r.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// record decodes one record into the pending batch, or the dead letters.
func (r *reader) record(ctx context.Context, rec *kgo.Record) error {
	if r.owned != nil {
		r.mu.Lock()
		if !r.owned[rec.Partition] {
			// Revoked since it was fetched: the next owner reads it.
			r.mu.Unlock()
			return nil
		}
		if next, ok := r.pos[rec.Topic][rec.Partition]; ok && rec.Offset < next {
			// Fetched again after the partition was handed over anew:
			// handed to the engine already.
			r.mu.Unlock()
			return nil
		}
		r.pos.set(rec.Topic, rec.Partition, rec.Offset+1)
		if !rec.Attrs.IsControl() {
			r.dataPos[rec.Partition] = rec.Offset + 1
		}
		r.mu.Unlock()
	} else {
		r.pos.set(rec.Topic, rec.Partition, rec.Offset+1)
	}
	pos := r.position()
	if rec.Attrs.IsControl() {
		r.bt.Skipped(pos)
		return nil
	}
	raw := bytes.TrimSpace(rec.Value)
	field, reason := "", "empty message value"
	if len(raw) > 0 {
		field, reason = r.cols.Decode(raw, r.vals)
	}
	if reason != "" {
		switch r.cfg.String(optOnError) {
		case onErrorSkip:
			r.bt.Skipped(pos)
			return nil
		case onErrorFail:
			at := rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + " offset " + strconv.FormatInt(rec.Offset, 10)
			if field != "" {
				at += fmt.Sprintf(": field %q", field)
			}
			return fmt.Errorf("%s: %s (on_error = %q)", at, reason, onErrorFail)
		}
		v := rec.Value
		if len(v) > maxRaw {
			v = v[:maxRaw]
		}
		return r.bt.DeadLetter(ctx, protocol.DeadLetter{
			Origin: rec.Topic + "/" + strconv.Itoa(int(rec.Partition)),
			Line:   rec.Offset, Column: field, Reason: reason, Raw: string(v),
		}, pos)
	}
	row := append(make([]sdk.Cell, 0, len(r.vals)+len(r.meta)), r.vals...)
	for _, m := range r.meta {
		var c sdk.Cell
		switch metaColumns[m].name {
		case "key":
			if rec.Key == nil {
				c.Null = true
			} else {
				c.S = string(rec.Key)
			}
		case "topic":
			c.S = rec.Topic
		case "partition":
			c.I = int64(rec.Partition)
		case "offset":
			c.I = rec.Offset
		case "timestamp":
			c.I = rec.Timestamp.UnixMicro()
		}
		row = append(row, c)
	}
	return r.bt.Record(ctx, [][]sdk.Cell{row}, pos)
}

func (r *reader) flush(ctx context.Context) error { return r.bt.Flush(ctx) }

// committer commits a group's offsets once a batch was handed to the
// engine, so that a new run of the group starts after it.
type committer struct {
	protocol.Emitter
	r *reader
}

func (c *committer) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	if err := c.Emitter.Emit(ctx, rec, pos); err != nil {
		return err
	}
	if !c.r.group {
		return nil
	}
	commit := map[string]map[int32]kgo.EpochOffset{}
	c.r.mu.Lock()
	for t, ps := range c.r.pos {
		commit[t] = map[int32]kgo.EpochOffset{}
		for part, next := range ps {
			commit[t][part] = kgo.EpochOffset{Epoch: -1, Offset: next}
		}
	}
	c.r.mu.Unlock()
	// Synchronously, so that a run that ends now has its offsets
	// committed; a failed commit is not fatal (the engine resumes from
	// positions), a new run of the group then starts earlier.
	// Not with ctx: a batch delivered just before a stop must still be
	// committed.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	c.r.cl.CommitOffsetsSync(cctx, commit, nil)
	return nil
}
