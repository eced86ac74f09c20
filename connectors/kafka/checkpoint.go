package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

var _ protocol.CheckpointSink = Sink{}

// LastCheckpoint fences the previous writer of the stage's transactional
// id (InitProducerID aborts the transaction a killed run left open, so
// the last stable offsets move past it), creates the checkpoint topic when
// it is missing (compacted, one partition), and returns the last
// checkpoint record of that id read with read_committed: the one whose
// transaction also committed the rows it covers. Nil when there is none.
func (Sink) LastCheckpoint(ctx context.Context, cfg protocol.Config) (*protocol.Checkpoint, error) {
	cfg, conn, err := checkSink(cfg)
	if err != nil {
		return nil, err
	}
	txnID, topic := transactionalID(cfg), checkpointTopic(cfg)
	if cfg.String(optPartCol) != "" {
		// Per-partition checkpoints: the source fences and resumes each
		// partition when the group assigns it (partitions.go).
		cl, err := kgo.NewClient(conn...)
		if err != nil {
			return nil, fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
		}
		defer cl.Close()
		return nil, ensureCheckpointTopic(ctx, kadm.NewClient(cl), topic)
	}
	fence, err := kgo.NewClient(append(conn, kgo.TransactionalID(txnID))...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
	}
	defer fence.Close()
	if _, _, err := fence.ProducerID(ctx); err != nil {
		return nil, fmt.Errorf("fence transactional producer %q: %w", txnID, protocol.WithKind(err, protocol.ErrTemporary))
	}
	adm := kadm.NewClient(fence)
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": ptr("compact")}, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("create checkpoint topic %q: %w", topic, protocol.WithKind(err, protocol.ErrTemporary))
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list checkpoint topic %q: %w", topic, protocol.WithKind(err, protocol.ErrTemporary))
	}
	parts := map[int32]kgo.Offset{}
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		parts[o.Partition] = kgo.NewOffset().AtStart()
		if o.Offset > 0 {
			left++
		}
	})
	if left == 0 {
		return nil, nil
	}
	rd, err := kgo.NewClient(append(conn,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", protocol.WithKind(err, protocol.ErrConfig))
	}
	defer rd.Close()
	var last *protocol.Checkpoint
	reached := map[int32]bool{}
	for left > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("read checkpoint topic %q: %w", topic, protocol.WithKind(fe.Err, protocol.ErrTemporary))
		}
		for it := fs.RecordIter(); !it.Done(); {
			rec := it.Next()
			if end := ends[topic][rec.Partition].Offset; rec.Offset+1 >= end && !reached[rec.Partition] {
				reached[rec.Partition] = true
				left--
			}
			if rec.Attrs.IsControl() || string(rec.Key) != txnID {
				continue
			}
			var cp protocol.Checkpoint
			if err := json.Unmarshal(rec.Value, &cp); err != nil {
				return nil, fmt.Errorf("checkpoint topic %q offset %d: decode checkpoint: %w", topic, rec.Offset, err)
			}
			if last == nil || cp.ID > last.ID {
				last = &cp
			}
		}
	}
	return last, nil
}

func ptr[T any](v T) *T { return &v }
