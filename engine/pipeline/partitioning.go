package pipeline

import (
	"fmt"
	"slices"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// optPartitionedBy is the source option that says which column the input
// is partitioned by (the kafka source's, for several instances in one
// consumer group: docs/operations.md).
const optPartitionedBy = "partitioned_by"

// checkPartitioning refuses keyed stages whose keys are not the
// partitioning column of a source they read: with the input split across
// instances by that column, a group rule (and the alerts stage after it)
// or an aggregate keyed otherwise would see only part of each key's rows
// on each instance.
func checkPartitioning(cfg *config.Pipeline) config.Errors {
	// partitionedBy returns the partitioning columns of the sources
	// behind stage name.
	var partitionedBy func(name string, seen map[string]bool) []string
	partitionedBy = func(name string, seen map[string]bool) []string {
		if seen[name] {
			return nil
		}
		seen[name] = true
		if cfg.Kind(name) == stream.KindSource {
			if by, ok := cfg.Source(name).Options[optPartitionedBy].(string); ok && by != "" {
				return []string{by}
			}
			return nil
		}
		var out []string
		for _, in := range cfg.Inputs(name) {
			out = append(out, partitionedBy(in, seen)...)
		}
		return out
	}
	var errs config.Errors
	check := func(pos config.Pos, key, name string, keys []string) {
		for _, by := range partitionedBy(name, map[string]bool{}) {
			if !slices.Equal(keys, []string{by}) {
				errs = append(errs, &config.Error{Pos: pos, Key: key + ".group_by",
					Msg: fmt.Sprintf("keyed by %v, but its input is partitioned_by %q: with several instances each would see part of a key's rows; group by [%q] or partition the input by these keys", keys, by, by)})
			}
		}
	}
	for i, r := range cfg.Rules {
		if len(r.GroupBy) > 0 {
			check(r.Pos, fmt.Sprintf("rule[%d]", i), r.Name, r.GroupBy)
		}
	}
	for i, a := range cfg.Aggregates {
		check(a.Pos, fmt.Sprintf("aggregate[%d]", i), a.Name, a.GroupBy)
	}
	return errs
}
