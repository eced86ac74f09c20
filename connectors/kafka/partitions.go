package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// Per-partition checkpoints, for several instances of one pipeline in one
// consumer group (issue 15, docs/design/streaming.md section 10).
//
// Each input partition p has its own transactional id,
// vigie.PIPELINE.p<p>, and its own checkpoint record (keyed by that id) in
// PIPELINE.checkpoints. The sink (option partition_column) writes the rows
// that came from p with p's producer, and at each engine checkpoint commits
// p's transaction with p's record: the rows of p and the offset of p they
// cover commit together, whatever the other partitions do. The source
// (options group and partitioned_by), when the group assigns it p, first
// fences p's transactional id (InitProducerID aborts what a dead owner left
// open and makes a live one's next commit fail), then reads p's last
// committed record and starts p there. When p is revoked, it stops reading
// p and waits until p's record covers every record of p it handed to the
// engine, so the next owner starts exactly after them.

// partitionTxnID is the transactional id of input partition p's output.
func partitionTxnID(pipeline string, p int32) string {
	return "vigie." + pipeline + ".p" + strconv.Itoa(int(p))
}

// partitionTxnPrefix is what every partitionTxnID of pipeline starts with.
func partitionTxnPrefix(pipeline string) string { return "vigie." + pipeline + ".p" }

// partitionCheckpoint is the Data of a per-partition checkpoint record.
type partitionCheckpoint struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset is the next offset of the input partition to process.
	Offset int64 `json:"offset"`
}

// ensureCheckpointTopic creates topic (compacted, one partition) when it
// is missing.
func ensureCheckpointTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": ptr("compact")}, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create checkpoint topic %q: %w", topic, protocol.WithKind(err, protocol.ErrTemporary))
	}
	return nil
}

// fencePartitions initializes the transactional id of every partition in
// parts, concurrently: a dead owner's open transaction aborts, a live
// owner's producer is fenced (its next commit fails).
func fencePartitions(ctx context.Context, conn []kgo.Opt, pipeline string, parts []int32) error {
	var wg sync.WaitGroup
	errs := make([]error, len(parts))
	for i, p := range parts {
		wg.Go(func() {
			id := partitionTxnID(pipeline, p)
			cl, err := kgo.NewClient(append(conn, kgo.TransactionalID(id))...)
			if err != nil {
				errs[i] = fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
				return
			}
			defer cl.Close()
			if _, _, err := cl.ProducerID(ctx); err != nil {
				errs[i] = fmt.Errorf("fence transactional producer %q: %w", id, protocol.WithKind(err, protocol.ErrTemporary))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cpReader follows the checkpoint topic with read_committed and keeps the
// last record of each per-partition transactional id of a pipeline. Not
// safe for concurrent use.
type cpReader struct {
	cl     *kgo.Client
	adm    *kadm.Client
	topic  string
	prefix string
	next   int64                 // next offset to read of the topic's one partition
	last   map[int32]int64       // input partition → next offset to process
	at     map[int32]int64       // input partition → offset of its last record in the topic
	topics map[int32]string      // input partition → input topic of its record
	ids    map[int32]json.Number // for diagnostics: the checkpoint id
}

func newCPReader(conn []kgo.Opt, topic, pipeline string) (*cpReader, error) {
	cl, err := kgo.NewClient(append(conn,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
	}
	return &cpReader{cl: cl, adm: kadm.NewClient(cl), topic: topic, prefix: partitionTxnPrefix(pipeline),
		last: map[int32]int64{}, at: map[int32]int64{}, topics: map[int32]string{}, ids: map[int32]json.Number{}}, nil
}

func (r *cpReader) close() { r.cl.Close() }

// catchUp reads the topic up to its last stable offset as of the call.
func (r *cpReader) catchUp(ctx context.Context) error {
	ends, err := r.adm.ListCommittedOffsets(ctx, r.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list checkpoint topic %q: %w", r.topic, protocol.WithKind(err, protocol.ErrTemporary))
	}
	end := ends[r.topic][0].Offset
	for r.next < end {
		fs := r.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, fe := range fs.Errors() {
			return fmt.Errorf("read checkpoint topic %q: %w", r.topic, protocol.WithKind(fe.Err, protocol.ErrTemporary))
		}
		for it := fs.RecordIter(); !it.Done(); {
			rec := it.Next()
			r.next = max(r.next, rec.Offset+1)
			if rec.Attrs.IsControl() || !strings.HasPrefix(string(rec.Key), r.prefix) {
				continue
			}
			var cp struct {
				ID   json.Number         `json:"id"`
				Data partitionCheckpoint `json:"data"`
			}
			if err := json.Unmarshal(rec.Value, &cp); err != nil {
				return fmt.Errorf("checkpoint topic %q offset %d: decode checkpoint: %w", r.topic, rec.Offset, err)
			}
			// Records of one id are committed in order: the last read
			// is the last committed.
			r.last[cp.Data.Partition] = cp.Data.Offset
			r.at[cp.Data.Partition] = rec.Offset
			r.topics[cp.Data.Partition] = cp.Data.Topic
			r.ids[cp.Data.Partition] = cp.ID
		}
	}
	return nil
}

// scaleOut is a source's side of per-partition checkpoints: the group's
// callbacks.
type scaleOut struct {
	r     *reader
	conn  []kgo.Opt
	cp    *cpReader
	reset kgo.Offset
	// replay: a newly assigned partition with a checkpoint record starts
	// at its earliest retained offset (restore = "replay").
	replay bool
}

func newScaleOut(ctx context.Context, r *reader, conn []kgo.Opt, reset kgo.Offset) (*scaleOut, error) {
	topic := r.cfg.Pipeline + ".checkpoints"
	admCl, err := kgo.NewClient(conn...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
	}
	err = ensureCheckpointTopic(ctx, kadm.NewClient(admCl), topic)
	admCl.Close()
	if err != nil {
		return nil, err
	}
	cp, err := newCPReader(conn, topic, r.cfg.Pipeline)
	if err != nil {
		return nil, err
	}
	r.owned, r.dataPos, r.since = map[int32]bool{}, map[int32]int64{}, map[int32]int64{}
	return &scaleOut{r: r, conn: conn, cp: cp, reset: reset, replay: r.cfg.String(optRestore) == restoreReplay}, nil
}

// assigned fences the newly assigned partitions and starts each at its
// last committed checkpoint record (the start option without one).
func (s *scaleOut) assigned(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	// A partition this reader already owns (franz-go may hand it again
	// after a session ended with an error) goes on where the reader is,
	// unfenced: fencing it would fence this instance's own sink.
	var parts, kept []int32
	s.r.mu.Lock()
	for t, ps := range assigned {
		for p := range ps {
			if next, ok := s.r.pos[t][p]; ok && s.r.owned[p] {
				ps[p] = kgo.NewOffset().At(next).WithEpoch(-1)
				kept = append(kept, p)
				continue
			}
			parts = append(parts, p)
		}
	}
	s.r.mu.Unlock()
	if len(kept) > 0 {
		s.r.log.Warn("partitions assigned again, kept where they were", "partitions", kept)
	}
	if len(parts) == 0 {
		return assigned, nil
	}
	start := time.Now()
	if err := fencePartitions(ctx, s.conn, s.r.cfg.Pipeline, parts); err != nil {
		return nil, err
	}
	if err := s.cp.catchUp(ctx); err != nil {
		return nil, err
	}
	var replayed []int32
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for t, ps := range assigned {
		for _, p := range parts {
			if _, ok := ps[p]; !ok {
				continue
			}
			next, ok := s.cp.last[p]
			switch {
			case ok && s.cp.topics[p] == t && s.replay:
				// Restore by replay: every retained record of p again;
				// the sink drops the rows below next.
				ps[p] = kgo.NewOffset().AtStart()
				delete(s.r.pos[t], p)
				replayed = append(replayed, p)
			case ok && s.cp.topics[p] == t:
				ps[p] = kgo.NewOffset().At(next).WithEpoch(-1)
				s.r.pos.set(t, p, next)
			default:
				ps[p] = s.reset
			}
			s.r.owned[p] = true
			s.r.since[p] = s.cp.next
			delete(s.r.dataPos, p)
		}
	}
	s.r.log.Info("partitions assigned", "partitions", parts, "replayed", replayed, "took", time.Since(start))
	return assigned, nil
}

// revoked stops reading the revoked partitions and waits until their
// committed checkpoint records cover every record handed to the engine
// (at most revokeWait), then drops them from the position: the next
// owner starts exactly after what this instance committed.
func (s *scaleOut) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	want := map[int32]int64{}
	s.r.mu.Lock()
	closing := s.r.closing
	for _, ps := range revoked {
		for _, p := range ps {
			delete(s.r.owned, p)
			if n, ok := s.r.dataPos[p]; ok {
				want[p] = n
			}
		}
	}
	s.r.mu.Unlock()
	start := time.Now()
	if !closing && len(want) > 0 {
		wctx, cancel := context.WithTimeout(ctx, revokeWait)
		defer cancel()
		for {
			if err := s.cp.catchUp(wctx); err != nil {
				s.r.log.Warn("revoked partitions: waiting for their checkpoint", "err", err)
				break
			}
			left := 0
			for p, n := range want {
				if s.cp.last[p] < n {
					left++
				}
			}
			if left == 0 {
				break
			}
			select {
			case <-wctx.Done():
				s.r.log.Warn("revoked partitions: no checkpoint covers what was read of them; the next owner reads it again", "partitions", left)
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break
		}
	}
	s.r.mu.Lock()
	for t, ps := range revoked {
		for _, p := range ps {
			delete(s.r.pos[t], p)
			delete(s.r.dataPos, p)
			delete(s.r.since, p)
		}
	}
	s.r.mu.Unlock()
	s.r.log.Info("partitions revoked", "partitions", revoked, "took", time.Since(start))
}

// lost ends the run: partitions lost without a revoke (the member was
// dropped from the group) may already be read by another member, and what
// this one still has in flight must not reach the output.
func (s *scaleOut) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	n := 0
	for _, ps := range lost {
		n += len(ps)
	}
	if n == 0 {
		return
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, ps := range lost {
		for _, p := range ps {
			delete(s.r.owned, p)
		}
	}
	if s.r.failed == nil && !s.r.closing {
		// Not temporary: a retried Read in the same run would fence its
		// own sink's producers; the run fails and restarts instead.
		s.r.failed = fmt.Errorf("consumer group: %d partitions lost (member dropped from the group); the run restarts from the per-partition checkpoints", n)
		if s.r.stop != nil {
			s.r.stop() // ends a poll waiting for records
		}
	}
}
