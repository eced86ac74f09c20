package config

import (
	"cmp"
	"slices"
	"strings"
)

// Kind is the kind of a stage of a pipeline.
type Kind int

// The kinds of stage. KindNone is returned for a name that is no stage.
const (
	KindNone Kind = iota
	KindSource
	KindRule
	KindSink
)

// String returns "source", "rule", "sink" or "none".
func (k Kind) String() string {
	switch k {
	case KindSource:
		return "source"
	case KindRule:
		return "rule"
	case KindSink:
		return "sink"
	default:
		return "none"
	}
}

// Kind returns the kind of the stage called name, or KindNone.
func (p *Pipeline) Kind(name string) Kind {
	switch {
	case p.Source(name) != nil:
		return KindSource
	case p.Rule(name) != nil:
		return KindRule
	case p.Sink(name) != nil:
		return KindSink
	}
	return KindNone
}

// Source returns the source called name, or nil.
func (p *Pipeline) Source(name string) *Source {
	for _, s := range p.Sources {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Rule returns the rule called name, or nil.
func (p *Pipeline) Rule(name string) *Rule {
	for _, r := range p.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Sink returns the sink called name, or nil.
func (p *Pipeline) Sink(name string) *Sink {
	for _, s := range p.Sinks {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Inputs returns the names of the stages that the stage called name reads:
// none for a source or an unknown name, one for a rule or a sink in format
// version 1.
func (p *Pipeline) Inputs(name string) []string {
	if r := p.Rule(name); r != nil {
		return []string{r.Input}
	}
	if s := p.Sink(name); s != nil {
		return []string{s.Input}
	}
	return nil
}

// Consumers returns the names of the rules and then the sinks that read the
// stage called name, each group in file order. A stage may have no
// consumer, or several: each receives every batch.
func (p *Pipeline) Consumers(name string) []string {
	var out []string
	for _, r := range p.Rules {
		if r.Input == name {
			out = append(out, r.Name)
		}
	}
	for _, s := range p.Sinks {
		if s.Input == name {
			out = append(out, s.Name)
		}
	}
	return out
}

// Order returns every stage name in a topological order: the sources in
// file order, then the rules, each after the rule it reads and otherwise in
// file order, then the sinks in file order. Starting stages in reverse of
// this order starts every consumer before its producer.
func (p *Pipeline) Order() []string {
	out := make([]string, 0, len(p.Sources)+len(p.Rules)+len(p.Sinks))
	for _, s := range p.Sources {
		out = append(out, s.Name)
	}
	done := make(map[string]bool, len(p.Rules))
	var visit func(r *Rule)
	visit = func(r *Rule) {
		if done[r.Name] {
			return
		}
		done[r.Name] = true // before the input: stops on a cycle
		if in := p.Rule(r.Input); in != nil {
			visit(in)
		}
		out = append(out, r.Name)
	}
	for _, r := range p.Rules {
		visit(r)
	}
	for _, s := range p.Sinks {
		out = append(out, s.Name)
	}
	return out
}

// stageRef is where a stage name was first defined.
type stageRef struct {
	kind  Kind
	index int    // in Sources, Rules or Sinks
	path  string // "source[0]"
	pos   Pos    // of its name key
}

// graph checks stage names and the edges between stages: duplicates,
// dangling inputs, inputs that are sinks, cycles among rules.
func (c *checker) graph(p *Pipeline) {
	var all []stageRef
	var names []string
	add := func(k Kind, i int, name string) {
		if name != "" {
			path := indexKey(strings.ToLower(k.String()), i)
			all = append(all, stageRef{k, i, path, c.at(path + ".name")})
			names = append(names, name)
		}
	}
	for i, s := range p.Sources {
		add(KindSource, i, s.Name)
	}
	for i, r := range p.Rules {
		add(KindRule, i, r.Name)
	}
	for i, s := range p.Sinks {
		add(KindSink, i, s.Name)
	}
	// The first definition is the first in the file, whatever its kind.
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(all[a].pos.Line, all[b].pos.Line) })
	stages := map[string]stageRef{}
	var producers []string // sources and rules: candidates for inputs
	for _, i := range idx {
		ref, name := all[i], names[i]
		if first, dup := stages[name]; dup {
			c.fail(ref.pos, ref.path+".name", "duplicate stage name %q (first defined by %s at %s)",
				name, first.path, first.pos)
			continue
		}
		stages[name] = ref
		if ref.kind != KindSink {
			producers = append(producers, name)
		}
	}

	input := func(path, self, in string) {
		if in == "" {
			return
		}
		key := path + ".input"
		ref, ok := stages[in]
		switch {
		case !ok && c.partial:
			// It may name the stage that could not be read.
		case !ok:
			cands := slices.DeleteFunc(slices.Clone(producers), func(s string) bool { return s == self })
			c.fail(c.at(key), key, "unknown stage %q%s", in, didYouMean(in, cands))
		case ref.kind == KindSink:
			c.fail(c.at(key), key, "stage %q is a sink, which has no output: an input must be a source or a rule", in)
		}
	}
	for i, r := range p.Rules {
		input(indexKey("rule", i), r.Name, r.Input)
	}
	for i, s := range p.Sinks {
		input(indexKey("sink", i), s.Name, s.Input)
	}
	c.cycles(p, stages)
}

// cycles reports each cycle among rules once, at the input of the rule of
// the cycle that comes first in the file.
func (c *checker) cycles(p *Pipeline, stages map[string]stageRef) {
	first := map[string]int{} // rule name -> index of the rule it names
	for name, ref := range stages {
		if ref.kind == KindRule {
			first[name] = ref.index
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(p.Rules))
	for i := range p.Rules {
		var path []int
		j := i
		for j >= 0 && state[j] == unseen {
			state[j] = onPath
			path = append(path, j)
			next, ok := first[p.Rules[j].Input]
			if !ok {
				next = -1
			}
			j = next
		}
		if j >= 0 && state[j] == onPath {
			cyc := path[slices.Index(path, j):] // each reads the next one
			m := slices.Index(cyc, slices.Min(cyc))
			cyc = slices.Concat(cyc[m:], cyc[:m])
			// Name the cycle in the direction data flows: reverse of reads.
			names := []string{p.Rules[cyc[0]].Name}
			for k := len(cyc) - 1; k >= 0; k-- {
				names = append(names, p.Rules[cyc[k]].Name)
			}
			key := indexKey("rule", cyc[0]) + ".input"
			c.fail(c.at(key), key, "cycle among rules: %s", strings.Join(names, " -> "))
		}
		for _, x := range path {
			state[x] = done
		}
	}
}
