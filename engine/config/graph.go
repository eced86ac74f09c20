package config

import (
	"cmp"
	"slices"
	"strings"

	"github.com/vigie-edu/vigie/engine/stream"
)

// Kind returns the kind of the stage called name, or "" if there is no
// such stage.
func (p *Pipeline) Kind(name string) stream.Kind {
	if st, ok := p.stage(name); ok {
		return st.kind
	}
	return ""
}

// Source returns the source called name, or nil.
func (p *Pipeline) Source(name string) *Source {
	return find(p.Sources, name, func(s *Source) string { return s.Name })
}

// Rule returns the rule called name, or nil.
func (p *Pipeline) Rule(name string) *Rule {
	return find(p.Rules, name, func(r *Rule) string { return r.Name })
}

// Join returns the join called name, or nil.
func (p *Pipeline) Join(name string) *Join {
	return find(p.Joins, name, func(j *Join) string { return j.Name })
}

// Union returns the union called name, or nil.
func (p *Pipeline) Union(name string) *Union {
	return find(p.Unions, name, func(u *Union) string { return u.Name })
}

// AggregateStage returns the aggregate stage called name, or nil.
func (p *Pipeline) AggregateStage(name string) *Aggregate {
	return find(p.Aggregates, name, func(a *Aggregate) string { return a.Name })
}

// AlertsStage returns the alerts stage called name, or nil.
func (p *Pipeline) AlertsStage(name string) *Alerts {
	return find(p.Alerts, name, func(a *Alerts) string { return a.Name })
}

// Sink returns the sink called name, or nil.
func (p *Pipeline) Sink(name string) *Sink {
	return find(p.Sinks, name, func(s *Sink) string { return s.Name })
}

func find[T any](list []*T, name string, nameOf func(*T) string) *T {
	for _, x := range list {
		if nameOf(x) == name {
			return x
		}
	}
	return nil
}

// edge is one input of a stage: the key that names it and the stage named.
type edge struct {
	key  string // key path, such as "rule[0].input" or "union[1].inputs"
	from string
}

// stage is any stage, for walking the graph.
type stage struct {
	name   string
	kind   stream.Kind
	index  int    // in its list
	path   string // "rule[0]"
	inputs []edge
}

// stages lists every stage: sources, rules, joins, unions, then sinks, each
// in file order.
func (p *Pipeline) stages() []stage {
	var out []stage
	for i, s := range p.Sources {
		out = append(out, stage{name: s.Name, kind: stream.KindSource, index: i, path: indexKey("source", i)})
	}
	for i, r := range p.Rules {
		path := indexKey("rule", i)
		out = append(out, stage{r.Name, stream.KindRule, i, path, []edge{{path + ".input", r.Input}}})
	}
	for i, j := range p.Joins {
		path := indexKey("join", i)
		out = append(out, stage{j.Name, stream.KindJoin, i, path, []edge{{path + ".input", j.Input}, {path + ".dimension", j.Dimension}}})
	}
	for i, u := range p.Unions {
		path := indexKey("union", i)
		st := stage{name: u.Name, kind: stream.KindUnion, index: i, path: path}
		for _, in := range u.Inputs {
			st.inputs = append(st.inputs, edge{path + ".inputs", in})
		}
		out = append(out, st)
	}
	for i, a := range p.Alerts {
		path := indexKey("alerts", i)
		out = append(out, stage{a.Name, stream.KindAlerts, i, path, []edge{{path + ".input", a.Input}}})
	}
	for i, a := range p.Aggregates {
		path := indexKey("aggregate", i)
		out = append(out, stage{a.Name, stream.KindAggregate, i, path, []edge{{path + ".input", a.Input}}})
	}
	for i, s := range p.Sinks {
		path := indexKey("sink", i)
		out = append(out, stage{s.Name, stream.KindSink, i, path, []edge{{path + ".input", s.Input}}})
	}
	return out
}

func (p *Pipeline) stage(name string) (stage, bool) {
	for _, st := range p.stages() {
		if st.name == name {
			return st, true
		}
	}
	return stage{}, false
}

// Inputs returns the names of the stages that the stage called name reads,
// in the order its keys give them: none for a source or an unknown name,
// one for a rule or a sink, the input then the dimension for a join, every
// input for a union.
func (p *Pipeline) Inputs(name string) []string {
	st, _ := p.stage(name)
	var out []string
	for _, e := range st.inputs {
		out = append(out, e.from)
	}
	return out
}

// Consumers returns the names of the stages that read the stage called
// name: rules, joins, unions, then sinks, each in file order. A stage may
// have no consumer, or several: each receives every batch.
func (p *Pipeline) Consumers(name string) []string {
	var out []string
	for _, st := range p.stages() {
		for _, e := range st.inputs {
			if e.from == name {
				out = append(out, st.name)
				break
			}
		}
	}
	return out
}

// Order returns every stage name in a topological order: the sources in
// file order, then the rules, joins and unions, each after the stages it
// reads and otherwise in file order, then the sinks in file order. Starting
// stages in reverse of this order starts every consumer before its
// producer.
func (p *Pipeline) Order() []string {
	all := p.stages()
	by := make(map[string]stage, len(all))
	var out []string
	for _, st := range all {
		if _, dup := by[st.name]; !dup {
			by[st.name] = st
		}
		if st.kind == stream.KindSource {
			out = append(out, st.name)
		}
	}
	done := map[string]bool{}
	var visit func(st stage)
	visit = func(st stage) {
		if done[st.name] {
			return
		}
		done[st.name] = true // before the inputs: stops on a cycle
		for _, e := range st.inputs {
			if in, ok := by[e.from]; ok && in.kind != stream.KindSource && in.kind != stream.KindSink {
				visit(in)
			}
		}
		out = append(out, st.name)
	}
	for _, st := range all {
		if st.kind != stream.KindSource && st.kind != stream.KindSink {
			visit(st)
		}
	}
	for _, st := range all {
		if st.kind == stream.KindSink {
			out = append(out, st.name)
		}
	}
	return out
}

// stageRef is where a stage name was first defined.
type stageRef struct {
	stage
	pos Pos // of its name key
}

// graph checks stage names and the edges between stages: duplicates,
// dangling inputs, inputs that are sinks, cycles.
func (c *checker) graph(p *Pipeline) {
	var all []stageRef
	for _, st := range p.stages() {
		if st.name != "" {
			all = append(all, stageRef{st, c.at(st.path + ".name")})
		}
	}
	// The first definition is the first in the file, whatever its kind.
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(all[a].pos.Line, all[b].pos.Line) })
	stages := map[string]stageRef{}
	var producers []string // candidates for inputs: every stage but sinks
	for _, i := range idx {
		ref := all[i]
		if first, dup := stages[ref.name]; dup {
			c.fail(ref.pos, ref.path+".name", "duplicate stage name %q (first defined by %s at %s)",
				ref.name, first.path, first.pos)
			continue
		}
		stages[ref.name] = ref
		if ref.kind != stream.KindSink {
			producers = append(producers, ref.name)
		}
	}
	for _, st := range p.stages() {
		for _, e := range st.inputs {
			if e.from == "" {
				continue
			}
			ref, ok := stages[e.from]
			switch {
			case !ok && c.partial:
				// It may name the stage that could not be read.
			case !ok:
				cands := slices.DeleteFunc(slices.Clone(producers), func(s string) bool { return s == st.name })
				c.fail(c.at(e.key), e.key, "unknown stage %q%s", e.from, didYouMean(e.from, cands))
			case ref.kind == stream.KindSink:
				c.fail(c.at(e.key), e.key, "stage %q is a sink, which has no output: an input must be a source, a rule, a join or a union", e.from)
			case st.kind == stream.KindAlerts && ref.kind != stream.KindRule:
				c.fail(c.at(e.key), e.key, "stage %q is a %s: the input of an alerts stage must be a group rule listing open alerts (such as the early-warning pack)", e.from, ref.kind)
			}
		}
	}
	c.cycles(p, stages)
}

// cycles reports each cycle once, at the input (of the cycle's stage that
// comes first in the file) that closes it.
func (c *checker) cycles(p *Pipeline, stages map[string]stageRef) {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []stageRef
	var pathKeys []string // pathKeys[i]: the key by which path[i] reads path[i+1]
	reported := map[string]bool{}
	var visit func(ref stageRef)
	visit = func(ref stageRef) {
		state[ref.name] = onPath
		path = append(path, ref)
		for _, e := range ref.inputs {
			in, ok := stages[e.from]
			if !ok || in.kind == stream.KindSink || in.kind == stream.KindSource {
				continue
			}
			pathKeys = append(pathKeys, e.key)
			switch state[in.name] {
			case unseen:
				visit(in)
			case onPath:
				start := slices.IndexFunc(path, func(r stageRef) bool { return r.name == in.name })
				c.reportCycle(path[start:], pathKeys[start:], reported)
			}
			pathKeys = pathKeys[:len(pathKeys)-1]
		}
		path = path[:len(path)-1]
		state[ref.name] = done
	}
	for _, st := range p.stages() {
		if ref, ok := stages[st.name]; ok && ref.path == st.path && state[st.name] == unseen && st.kind != stream.KindSource && st.kind != stream.KindSink {
			visit(ref)
		}
	}
}

// reportCycle reports the cycle cyc, in which cyc[i] reads cyc[i+1] by
// key keys[i] and the last reads the first.
func (c *checker) reportCycle(cyc []stageRef, keys []string, reported map[string]bool) {
	// Start at the stage first in the file.
	m := 0
	for i, r := range cyc {
		if r.pos.Line < cyc[m].pos.Line {
			m = i
		}
	}
	cyc = slices.Concat(cyc[m:], cyc[:m])
	keys = slices.Concat(keys[m:], keys[:m])
	members := make([]string, len(cyc))
	allRules := true
	for i, r := range cyc {
		members[i] = r.name
		allRules = allRules && r.kind == stream.KindRule
	}
	id := strings.Join(slices.Sorted(slices.Values(members)), ",")
	if reported[id] {
		return
	}
	reported[id] = true
	// Name the cycle in the direction data flows: reverse of reads.
	names := []string{cyc[0].name}
	for k := len(cyc) - 1; k >= 0; k-- {
		names = append(names, cyc[k].name)
	}
	what := "stages"
	if allRules {
		what = "rules"
	}
	c.fail(c.at(keys[0]), keys[0], "cycle among %s: %s", what, strings.Join(names, " -> "))
}
