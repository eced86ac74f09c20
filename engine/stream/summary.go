package stream

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// StageSummary is what went through one stage.
type StageSummary struct {
	Name         string
	Kind         Kind
	RowsIn       int64
	RowsOut      int64
	DeadLettered int64
	Batches      int64
	// Late is the number of late rows of a group rule in event time
	// (rescored, or dead-lettered and also counted in DeadLettered).
	Late int64
}

// Summary describes a finished run.
type Summary struct {
	Pipeline string
	Stages   []StageSummary
	Wall     time.Duration
	// Err is nil for a complete run, ErrInterrupted after a graceful stop,
	// or the error that stopped the run.
	Err error
}

func (g *Graph) summary(start time.Time) *Summary {
	s := &Summary{Pipeline: g.name, Wall: time.Since(start)}
	for _, n := range g.nodes {
		s.Stages = append(s.Stages, StageSummary{
			Name:         n.name,
			Kind:         n.kind,
			RowsIn:       n.stats.RowsIn.Load(),
			RowsOut:      n.stats.RowsOut.Load(),
			DeadLettered: n.stats.DeadLettered.Load(),
			Batches:      n.stats.BatchesOut.Load(),
			Late:         n.stats.Late.Load(),
		})
	}
	return s
}

// Stage returns the summary of the named stage.
func (s *Summary) Stage(name string) (StageSummary, bool) {
	for _, st := range s.Stages {
		if st.Name == name {
			return st, true
		}
	}
	return StageSummary{}, false
}

// SourceRows is the number of rows read by all sources, dead letters
// included.
func (s *Summary) SourceRows() int64 {
	var n int64
	for _, st := range s.Stages {
		if st.Kind == KindSource {
			n += st.RowsOut + st.DeadLettered
		}
	}
	return n
}

// DeadLettered is the number of rows dead-lettered by all stages.
func (s *Summary) DeadLettered() int64 {
	var n int64
	for _, st := range s.Stages {
		n += st.DeadLettered
	}
	return n
}

// Status is "ok", "interrupted" or "failed".
func (s *Summary) Status() string {
	switch {
	case s.Err == nil:
		return "ok"
	case errors.Is(s.Err, ErrInterrupted):
		return "interrupted"
	}
	return "failed"
}

// Line is the one-line summary of the run.
func (s *Summary) Line() string {
	rate := 0.0
	if secs := s.Wall.Seconds(); secs > 0 {
		rate = float64(s.SourceRows()) / secs
	}
	return fmt.Sprintf("pipeline %q %s: %d rows read, %d dead-lettered, %s wall, %.0f rows/s",
		s.Pipeline, s.Status(), s.SourceRows(), s.DeadLettered(), s.Wall.Round(time.Millisecond), rate)
}

// Print writes the per-stage table and the summary line.
func (s *Summary) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tkind\trows in\trows out\tdead-lettered\tbatches\t")
	for _, st := range s.Stages {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t\n", st.Name, st.Kind, st.RowsIn, st.RowsOut, st.DeadLettered, st.Batches)
	}
	tw.Flush()
	for _, st := range s.Stages {
		if st.Late > 0 {
			fmt.Fprintf(w, "stage %q: %d late rows (behind their partition's watermark)\n", st.Name, st.Late)
		}
	}
	fmt.Fprintln(w, s.Line())
	if s.Err != nil && s.Err != ErrInterrupted {
		fmt.Fprintln(w, "error: "+strings.TrimSpace(s.Err.Error()))
	}
}
