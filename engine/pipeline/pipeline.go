// Package pipeline turns a checked pipeline file into a runnable graph:
// it starts the connectors, loads the rules, binds every rule's inputs to
// the schema upstream of it, and runs the stages with engine/stream.
//
// Prepare does everything that can be checked before data moves, which is
// what `vigie validate` runs; Plan.Run then moves the data.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/privacy"
	"github.com/vigie-edu/vigie/engine/state"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/rules/abi"
)

// ruleRunner is a map or group rule stage.
type ruleRunner interface {
	stream.Transform
	close(ctx context.Context)
}

// Connectors hands out connectors by name (pluginhost.Host does). Connector
// is called concurrently: Prepare starts the connectors of every source and
// sink at once (with plugins, each is a process to start).
type Connectors interface {
	Connector(ctx context.Context, name string) (protocol.Connector, error)
}

// errNoRuntime is the error of a rule prepared with no Env.Rules.
var errNoRuntime = errors.New("the engine was given no rule runtime (pipeline.Env.Rules)")

// Env is what a plan runs with. The caller owns and closes its parts.
type Env struct {
	Connectors Connectors
	// Rules loads the rule modules; nil is enough for a pipeline without
	// rules. Its type is internal (see RATIONALE.md, "Env.Rules stays a
	// *wasmhost.Runtime"): outside this module, pipelines run without rules
	// or through cmd/vigie.
	Rules *wasmhost.Runtime
	// Mem allocates every batch the engine builds (rule results, joins,
	// groups, sources read in process); tests pass a checked allocator.
	// Nil: a Go allocator of the plan's own.
	Mem memory.Allocator
	Log *slog.Logger
}

// Plan is a prepared pipeline: connectors started, options checked, rules
// loaded and bound, schemas known. Run it once, then Close it.
type Plan struct {
	cfg     *config.Pipeline
	env     Env
	schemas map[string]*arrow.Schema
	sources map[string]*sourceStage
	rules   map[string]ruleRunner
	sinks   map[string]*sinkStage
	merges  map[string]stream.Merge
	alerts  map[string]*alertsStage
	// unbounded is set when a source does not end at the end of its input:
	// the run is continuous and sinks flush every max_delay (sinkStage.flushDelay).
	unbounded bool
	// cp takes the checkpoints of a continuous run; nil in a batch run.
	cp *coordinator

	stateMu sync.Mutex
	state   *state.Store // the shared store of state_dir, opened on first use

	// keys pseudonymise the identifier columns ([privacy]); nil when none.
	keys *privacy.Keys
	// lookups are the clear values of the sources that re-identifying
	// sinks look up, by source name.
	lookups map[string]*privacy.Lookup
	// audited is where the last run was recorded.
	audited AuditHead
	// preloads are the rule modules loading while Prepare runs (preload.go).
	preloads map[string]*preload
}

// stateStore returns how a group stage gets its store: the pipeline's
// state_dir, shared and kept, or a temporary one of its own.
func (p *Plan) stateStore(keep bool) func() (*state.Store, bool, error) {
	return p.stateStoreFor(keep, false)
}

// stateStoreFor is stateStore; writeThenScan says that a temporary store
// is filled once and then walked once (a group rule evaluated at the end
// of its input), which state.Options.WriteThenScan makes cheaper.
func (p *Plan) stateStoreFor(keep, writeThenScan bool) func() (*state.Store, bool, error) {
	opts := state.Options{MemoryBytes: int64(p.cfg.StateMemoryMB) << 20}
	if !keep {
		opts.WriteThenScan = writeThenScan
		return func() (*state.Store, bool, error) {
			s, err := state.OpenTemp(opts)
			return s, false, err
		}
	}
	return func() (*state.Store, bool, error) {
		p.stateMu.Lock()
		defer p.stateMu.Unlock()
		if p.state == nil {
			s, err := state.Open(p.cfg.StateDir, opts)
			if err != nil {
				return nil, false, err
			}
			p.state = s
		}
		return p.state, true, nil
	}
}

// Schema returns the schema of the batches the named stage emits (for a
// sink: the schema it writes).
func (p *Plan) Schema(stage string) *arrow.Schema { return p.schemas[stage] }

// Config returns the pipeline the plan was prepared from.
func (p *Plan) Config() *config.Pipeline { return p.cfg }

// Prepare checks cfg against the connectors and rules it names and returns
// a plan ready to run. Every problem found is reported, as config.Errors
// pointing at the line of the pipeline file concerned. On error, nothing
// needs closing.
func Prepare(ctx context.Context, cfg *config.Pipeline, env Env) (*Plan, error) {
	if env.Mem == nil {
		env.Mem = memory.NewGoAllocator() // the plan's own, not a global
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	p := &Plan{
		cfg:     cfg,
		env:     env,
		schemas: map[string]*arrow.Schema{},
		sources: map[string]*sourceStage{},
		rules:   map[string]ruleRunner{},
		sinks:   map[string]*sinkStage{},
		merges:  map[string]stream.Merge{},
		alerts:  map[string]*alertsStage{},
	}
	var errs config.Errors
	keys, err := LoadKeys(cfg, time.Now())
	if err != nil {
		errs = append(errs, err.(config.Errors)...)
	}
	p.keys, p.lookups = keys, newLookups(cfg, keys)
	p.preloadRules(ctx)
	conns := p.startConnectors(ctx)
	for _, name := range cfg.Order() {
		var err error
		switch cfg.Kind(name) {
		case stream.KindSource:
			err = p.prepareSource(ctx, cfg.Source(name), conns[name])
		case stream.KindRule:
			err = p.prepareRule(ctx, cfg.Rule(name))
		case stream.KindSink:
			err = p.prepareSink(ctx, cfg.Sink(name), conns[name])
		case stream.KindJoin:
			err = p.prepareJoin(cfg.Join(name))
		case stream.KindUnion:
			err = p.prepareUnion(cfg.Union(name))
		case stream.KindAlerts:
			err = p.prepareAlerts(cfg.AlertsStage(name))
		case stream.KindAggregate:
			err = p.prepareAggregate(cfg.AggregateStage(name))
		}
		var ce config.Errors
		switch {
		case errors.As(err, &ce):
			errs = append(errs, ce...)
		case err != nil:
			errs = append(errs, &config.Error{Pos: cfg.Pos, Key: name, Msg: err.Error(), Err: err})
		}
	}
	p.closePreloads(ctx)
	errs = append(errs, p.checkLookups()...)
	errs = append(errs, checkPartitioning(cfg)...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Pos.Line < errs[j].Pos.Line })
		p.Close(ctx)
		return nil, errs
	}
	if p.unbounded {
		for _, s := range p.sinks {
			s.flushDelay = cfg.MaxDelay
		}
		for _, m := range p.merges {
			if a, ok := m.(*aggregateStage); ok {
				a.continuous = true
			}
		}
		if cfg.CheckpointInterval > 0 {
			if err := p.prepareCheckpoints(); err != nil {
				p.Close(ctx)
				return nil, err
			}
		}
	}
	return p, nil
}

// prepareCheckpoints sets up the checkpoints of a continuous run: the
// commit point is the one sink whose connector records checkpoints (the
// Kafka sink), else a record file in state_dir.
func (p *Plan) prepareCheckpoints() error {
	c := &coordinator{interval: p.cfg.CheckpointInterval, log: p.env.Log}
	c.sync = func() error {
		p.stateMu.Lock()
		s := p.state
		p.stateMu.Unlock()
		if s == nil {
			return nil
		}
		return s.Sync()
	}
	// The sources behind a join's dimension are read whole at every run:
	// the join keeps their rows in memory, not in a checkpoint. They are
	// neither held at checkpoints (the join reads its input only once the
	// dimension ended) nor resumed.
	dims := map[string]bool{}
	var behind func(string)
	behind = func(name string) {
		if p.cfg.Kind(name) == stream.KindSource {
			dims[name] = true
		}
		for _, in := range p.cfg.Inputs(name) {
			behind(in)
		}
	}
	for _, j := range p.cfg.Joins {
		behind(j.Dimension)
	}
	var committers []string
	for _, name := range p.cfg.Order() {
		if s := p.sources[name]; s != nil && !dims[name] {
			s.cfg.Checkpointed = true
			c.sources = append(c.sources, s)
		}
		if s := p.sinks[name]; s != nil {
			s.cfg.Checkpointed = true
			s.cp, s.flushDelay = c, 0
			c.sinks = append(c.sinks, s)
			if s.snk.Spec().Checkpoints {
				committers = append(committers, name)
				c.commit = s
			}
		}
	}
	switch {
	case len(committers) > 1:
		return config.Errors{{Pos: p.cfg.Pos, Key: "pipeline.checkpoint_interval", Msg: fmt.Sprintf(
			"sinks %q all commit checkpoints in their own transactions: a continuous run can have only one such sink (split the pipeline, or write the other outputs to files)", committers)}}
	case c.commit == nil && p.cfg.StateDir != "":
		c.file = filepath.Join(p.cfg.StateDir, "checkpoint.json")
	case c.commit == nil:
		p.env.Log.Warn("continuous run without a Kafka sink or a state_dir: checkpoints flush the sinks but are not recorded, a restart reads from the start")
	}
	// The open windows of aggregate stages go to state_dir at each
	// checkpoint (aggregate_state.go).
	for _, a := range p.cfg.Aggregates {
		st, ok := p.merges[a.Name].(*aggregateStage)
		switch {
		case !ok:
		case p.cfg.StateDir == "":
			p.env.Log.Warn("continuous run without a state_dir: an aggregate's open windows are not checkpointed, a restart loses their rows read before it", "aggregate", a.Name)
		default:
			if c.aggs == nil {
				c.aggs = &aggregateStates{dir: filepath.Join(p.cfg.StateDir, "aggregates")}
			}
			c.aggs.stages = append(c.aggs.stages, st)
		}
	}
	p.prepareCuts(c)
	p.cp = c
	return nil
}

// prepareCuts makes c record, at each checkpoint, the cut of every per-row
// group stage whose state is kept in state_dir (the last arrival sequence
// of each partition), and roll their progress back to the cuts of the
// checkpoint a restart resumes from: without it, the rows after the cut
// would be judged late, and expire, against the watermarks the killed run
// reached past it (docs/design/streaming.md, section 3).
func (p *Plan) prepareCuts(c *coordinator) {
	var stages []string
	for _, r := range p.cfg.Rules {
		if r.Emit == config.EmitPerRow && r.KeepState {
			stages = append(stages, r.Name)
		}
	}
	if len(stages) == 0 || p.cfg.StateDir == "" {
		return
	}
	open := p.stateStore(true)
	c.cuts = func() (map[string]map[uint32]uint64, error) {
		s, _, err := open()
		if err != nil {
			return nil, err
		}
		cuts := make(map[string]map[uint32]uint64, len(stages))
		for _, name := range stages {
			if cuts[name], err = s.Cut(name); err != nil {
				return nil, fmt.Errorf("read the cut of rule %q: %w", name, err)
			}
		}
		return cuts, nil
	}
	c.rollBack = func(cuts map[string]map[uint32]uint64) error {
		s, _, err := open()
		if err != nil {
			return err
		}
		for _, name := range stages {
			cut, ok := cuts[name]
			if !ok {
				continue // not a per-row stage at that checkpoint
			}
			n, err := s.RollBackProgress(name, cut)
			if err != nil {
				return fmt.Errorf("rule %q: %w", name, err)
			}
			if n > 0 {
				c.log.Info("per-row progress rolled back to the checkpoint", "rule", name, "partitions", n)
			}
		}
		return nil
	}
}

// CheckpointStats describes the checkpoints of the last Run; zero in a
// batch run.
func (p *Plan) CheckpointStats() CheckpointStats {
	if p.cp == nil {
		return CheckpointStats{}
	}
	return p.cp.snapshot()
}

// startedConnector is the outcome of asking Connectors for one stage's
// connector.
type startedConnector struct {
	c   protocol.Connector
	err error
}

// startConnectors asks for the connector of every source and sink at once
// (plugin processes start side by side instead of one after the other) and
// returns them by stage name.
func (p *Plan) startConnectors(ctx context.Context) map[string]startedConnector {
	started := map[string]startedConnector{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := func(stage, name string) {
		wg.Go(func() {
			c, err := p.env.Connectors.Connector(ctx, name)
			mu.Lock()
			started[stage] = startedConnector{c, err}
			mu.Unlock()
		})
	}
	for _, s := range p.cfg.Sources {
		start(s.Name, s.Connector)
	}
	for _, s := range p.cfg.Sinks {
		start(s.Name, s.Connector)
	}
	wg.Wait()
	return started
}

// connectorConfig checks options against the connector's spec, resolves
// path options against the pipeline's folder, and maps option errors to
// lines of the pipeline file.
func (p *Plan) connectorConfig(c protocol.Connector, stage, key string, at config.Pos, opts map[string]any, optPos map[string]config.Pos) (protocol.Config, error) {
	spec := c.Spec()
	checked, err := spec.Check(opts)
	if err != nil {
		var oes protocol.OptionErrors
		if !errors.As(err, &oes) {
			return protocol.Config{}, err
		}
		var errs config.Errors
		for _, oe := range oes {
			pos, ok := optPos[oe.Option]
			if !ok {
				pos = at
			}
			errs = append(errs, &config.Error{Pos: pos, Key: key + ".options." + oe.Option, Msg: fmt.Sprintf("connector %q: %s", spec.Name, oe.Msg)})
		}
		return protocol.Config{}, errs
	}
	for _, o := range spec.Options {
		if s, ok := checked[o.Name].(string); ok && o.Type == protocol.TypePath {
			checked[o.Name] = p.cfg.Resolve(s)
		}
	}
	return protocol.Config{
		Pipeline:  p.cfg.Name,
		Stage:     stage,
		Connector: spec.Name,
		BatchRows: p.cfg.BatchRows,
		MaxDelay:  p.cfg.MaxDelay,
		Options:   checked,
	}, nil
}

// stageError is an error of one stage, at the line of its header.
func stageError(at config.Pos, key string, err error) error {
	return config.Errors{{Pos: at, Key: key, Msg: err.Error(), Err: err}}
}

func index[T any](list []*T, item *T) int {
	for i, x := range list {
		if x == item {
			return i
		}
	}
	return -1
}

func (p *Plan) prepareSource(ctx context.Context, s *config.Source, started startedConnector) error {
	key := fmt.Sprintf("source[%d]", index(p.cfg.Sources, s))
	c, err := started.c, started.err
	if err != nil {
		return stageError(s.Pos, key+".connector", err)
	}
	src, ok := c.(protocol.Source)
	if !ok {
		return stageError(s.Pos, key+".connector", fmt.Errorf("connector %q is a %s, not a source", s.Connector, c.Spec().Kind))
	}
	cc, err := p.connectorConfig(c, s.Name, key, s.Pos, s.Options, s.OptionPos)
	if err != nil {
		return err
	}
	schema, err := src.Schema(ctx, cc)
	if err != nil {
		return stageError(s.Pos, key, err)
	}
	cc.Schema = schema // Read emits it, without inferring it again
	stage := &sourceStage{src: src, cfg: cc, mem: p.env.Mem, threshold: s.DeadLetterThreshold}
	if schema, err = p.pseudonymise(s, stage, schema); err != nil {
		return stageError(s.Pos, key, err)
	}
	p.schemas[s.Name] = schema
	p.sources[s.Name] = stage
	if c.Spec().Unbounded {
		p.unbounded = true
	}
	return nil
}

func (p *Plan) prepareRule(ctx context.Context, r *config.Rule) error {
	key := fmt.Sprintf("rule[%d]", index(p.cfg.Rules, r))
	upstream := p.schemas[r.Input]
	if upstream == nil {
		return nil // the input failed to prepare; its own error says why
	}
	if p.env.Rules == nil {
		return stageError(r.Pos, key+".module", errNoRuntime)
	}
	mod, err := p.loadRule(ctx, r)
	if err != nil {
		return stageError(r.Pos, key+".module", err)
	}
	bind := wasmhost.NewBindConfig().WithReplace(r.Replace...)
	if r.ProvenanceColumns {
		bind = bind.WithProvenanceColumns(true)
	}
	binding, err := mod.Bind(upstream, bind)
	if err != nil {
		mod.Close(ctx)
		return stageError(r.Pos, key, err)
	}
	stage := &ruleStage{cfg: r, mod: mod, binding: binding, mem: p.env.Mem}
	schema := binding.OutputSchema()
	var group *groupStage
	switch {
	case mod.Manifest.Kind == abi.KindGroup:
		if len(r.GroupBy) == 0 {
			mod.Close(ctx)
			return stageError(r.Pos, key+".group_by", fmt.Errorf("rule %s is a group rule: group_by must name its key columns", mod.Manifest.Name))
		}
		group, err = newGroupStage(stage, p.cfg.BatchRows)
		if err != nil {
			mod.Close(ctx)
			return stageError(r.Pos, key+".group_by", err)
		}
		// At the end of input over all keys, a temporary store is filled
		// once and walked once in key order (rescore = "touched" walks key
		// by key instead).
		group.store = p.stateStoreFor(r.KeepState, r.Emit != config.EmitPerRow && r.Rescore != config.RescoreTouched)
		if err := p.checkEmit(r, key); err != nil {
			mod.Close(ctx)
			return err
		}
		schema = group.schema
	case len(r.GroupBy) > 0:
		mod.Close(ctx)
		return stageError(r.Pos, key+".group_by", fmt.Errorf("rule %s is a map rule: group_by applies to group rules only", mod.Manifest.Name))
	}
	workers := r.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	limits := wasmhost.Limits{
		MemoryPages:    uint32(r.Limits.MemoryPages),
		Timeout:        r.Limits.Timeout,
		MaxOutputBytes: r.Limits.MaxOutputBytes,
		MaxLogBytes:    r.Limits.MaxLogBytes,
	}
	instCfg := wasmhost.NewInstanceConfig().WithParams(r.Params).WithLimits(limits)
	for range workers {
		inst, err := mod.NewInstance(ctx, instCfg)
		if err != nil {
			stage.close(ctx)
			return stageError(r.Pos, key+".params", err)
		}
		stage.insts = append(stage.insts, inst)
	}
	p.schemas[r.Name] = schema
	if group != nil {
		p.rules[r.Name] = group
	} else {
		p.rules[r.Name] = stage
	}
	return nil
}

func (p *Plan) prepareJoin(j *config.Join) error {
	key := fmt.Sprintf("join[%d]", index(p.cfg.Joins, j))
	in, dim := p.schemas[j.Input], p.schemas[j.Dimension]
	if in == nil || dim == nil {
		return nil // an input failed to prepare; its own error says why
	}
	stage, err := newJoinStage(j, in, dim, p.env.Mem)
	if err != nil {
		return stageError(j.Pos, key, err)
	}
	p.schemas[j.Name] = stage.schema
	p.merges[j.Name] = stage
	return nil
}

func (p *Plan) prepareUnion(u *config.Union) error {
	key := fmt.Sprintf("union[%d]", index(p.cfg.Unions, u))
	schemas := make([]*arrow.Schema, len(u.Inputs))
	for i, in := range u.Inputs {
		if schemas[i] = p.schemas[in]; schemas[i] == nil {
			return nil // an input failed to prepare; its own error says why
		}
	}
	schema, err := unionSchema(u.Inputs, schemas)
	if err != nil {
		return stageError(u.Pos, key, err)
	}
	p.schemas[u.Name] = schema
	p.merges[u.Name] = &unionStage{schema: schema, mem: p.env.Mem}
	return nil
}

func (p *Plan) prepareAlerts(a *config.Alerts) error {
	key := fmt.Sprintf("alerts[%d]", index(p.cfg.Alerts, a))
	in := p.schemas[a.Input]
	if in == nil {
		return nil // the input failed to prepare; its own error says why
	}
	r := p.cfg.Rule(a.Input)
	if _, group := p.rules[a.Input].(*groupStage); r == nil || !group {
		return config.Errors{{Pos: a.At("input"), Key: key + ".input", Msg: fmt.Sprintf("stage %q is not a group rule: the input of an alerts stage must be a group rule listing open alerts (such as the early-warning pack)", a.Input)}}
	}
	stage, err := newAlertsStage(a, key, r.GroupBy, in, p.env.Mem)
	if err != nil {
		return err
	}
	stage.store = p.stateStore(true)
	p.schemas[a.Name] = stage.schema
	p.merges[a.Name] = stage
	p.alerts[a.Name] = stage
	return nil
}

func (p *Plan) prepareAggregate(a *config.Aggregate) error {
	in := p.schemas[a.Input]
	if in == nil {
		return nil // the input failed to prepare; its own error says why
	}
	stage, err := newAggregateStage(a, fmt.Sprintf("aggregate[%d]", index(p.cfg.Aggregates, a)), in, p.env.Mem)
	if err != nil {
		return err
	}
	p.schemas[a.Name] = stage.schema
	p.merges[a.Name] = stage
	return nil
}

func (p *Plan) prepareSink(ctx context.Context, s *config.Sink, started startedConnector) error {
	key := fmt.Sprintf("sink[%d]", index(p.cfg.Sinks, s))
	c, err := started.c, started.err
	if err != nil {
		return stageError(s.Pos, key+".connector", err)
	}
	snk, ok := c.(protocol.Sink)
	if !ok {
		return stageError(s.Pos, key+".connector", fmt.Errorf("connector %q is a %s, not a sink", s.Connector, c.Spec().Kind))
	}
	cc, err := p.connectorConfig(c, s.Name, key, s.Pos, s.Options, s.OptionPos)
	if err != nil {
		return err
	}
	// The sources come first in Order: whether the run takes checkpoints
	// is known, and changes what some sinks write (parquet: a folder of
	// parts).
	cc.Checkpointed = p.unbounded && p.cfg.CheckpointInterval > 0
	if err := snk.Validate(ctx, cc); err != nil {
		return stageError(s.Pos, key, err)
	}
	var view *sinkView
	if upstream := p.schemas[s.Input]; upstream != nil {
		p.schemas[s.Name] = upstream
		if view, err = p.sinkView(s, key, upstream); err != nil {
			return err
		}
		if view != nil {
			p.schemas[s.Name] = view.schema
		}
	}
	p.sinks[s.Name] = &sinkStage{snk: snk, cfg: cc, mem: p.env.Mem, schema: p.schemas[s.Name], view: view}
	return nil
}

// RunOptions tune Plan.Run.
type RunOptions struct {
	// Stop, when closed, stops the sources gracefully (see stream.RunOptions).
	// What is in flight then has StopTimeout to drain through the rules
	// and reach the sinks; past it the run is cancelled: rule calls are
	// interrupted and sinks abort.
	Stop <-chan struct{}
	// StopTimeout bounds a graceful stop; zero takes the pipeline's
	// stop_timeout.
	StopTimeout time.Duration
	// Buffer is the capacity in batches of each channel between stages.
	Buffer int
	// Observer, when set, watches the run: metrics, progress (see
	// stream.Observer).
	Observer stream.Observer
}

// Run moves the data. The summary is returned in every case; the error is
// nil for a complete run, stream.ErrInterrupted after a graceful stop, or
// the error that stopped the run, naming its stage.
func (p *Plan) Run(ctx context.Context, opts RunOptions) (*stream.Summary, error) {
	if p.cp != nil {
		if err := p.cp.restore(ctx); err != nil {
			return nil, err
		}
	}
	g := stream.NewGraph(p.cfg.Name)
	for _, name := range p.cfg.Order() {
		var err error
		var w *watched
		if p.cp != nil && p.cfg.Kind(name) != stream.KindSource {
			w = &watched{name: name}
			p.cp.watch = append(p.cp.watch, w)
		}
		switch p.cfg.Kind(name) {
		case stream.KindSource:
			err = g.AddSource(name, p.sources[name])
		case stream.KindRule:
			var t stream.Transform = p.rules[name]
			if w != nil {
				if b, ok := t.(interface{ busy() bool }); ok {
					w.busy = b.busy
				}
				t = watchedTransform{t, w}
			}
			err = g.AddTransform(name, p.cfg.Rule(name).Input, t)
		case stream.KindSink:
			var k stream.Sink = p.sinks[name]
			if w != nil {
				k = watchedSink{k, w}
			}
			err = g.AddSink(name, p.cfg.Sink(name).Input, k)
		case stream.KindJoin, stream.KindUnion, stream.KindAlerts, stream.KindAggregate:
			m := p.merges[name]
			if w != nil {
				m = watchedMerge{m, w}
			}
			err = g.AddMerge(name, p.cfg.Kind(name), p.cfg.Inputs(name), m)
		}
		if err != nil {
			return nil, err
		}
	}
	dl := newDeadLetterFile(p.cfg.DeadLetter)
	if p.cp != nil {
		if err := dl.resume(p.cp.dlResume); err != nil {
			return &stream.Summary{Pipeline: p.cfg.Name, Err: err}, err
		}
		p.cp.dl = dl
	}
	stopRetention, err := p.retain(ctx, dl)
	if err != nil {
		return &stream.Summary{Pipeline: p.cfg.Name, Err: err}, err
	}
	defer stopRetention()
	runCtx, late := p.stopDeadline(ctx, opts)
	var cpErr error
	stopCheckpoints := func() {}
	if p.cp != nil {
		if o, ok := opts.Observer.(interface{ Checkpointed(time.Time) }); ok {
			p.cp.observed = o.Checkpointed
		}
		var cancel context.CancelCauseFunc
		runCtx, cancel = context.WithCancelCause(runCtx)
		cctx, stop := context.WithCancel(runCtx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if cpErr = p.cp.run(cctx); cpErr != nil {
				cancel(cpErr)
			}
		}()
		stopCheckpoints = func() { stop(); <-done; cancel(nil) }
	}
	sum, err := g.Run(runCtx, stream.RunOptions{Stop: opts.Stop, Buffer: opts.Buffer, Log: p.env.Log, DeadLetters: dl, Observer: opts.Observer})
	stopCheckpoints()
	if cpErr != nil {
		err = cpErr
		sum.Err = cpErr
	}
	switch {
	case late() && err != nil:
		err = fmt.Errorf("%w: the graceful stop took longer than stop_timeout (%s): the run was cancelled, rule calls interrupted and outputs aborted", stream.ErrInterrupted, p.stopTimeout(opts))
		sum.Err = err
	case err != nil && ctx.Err() != nil:
		// The caller aborted the run: the stages' errors only echo that.
		err = fmt.Errorf("%w: aborted, rule calls interrupted and outputs aborted: %w", stream.ErrInterrupted, ctx.Err())
		sum.Err = err
	}
	closeDL := dl.Close
	if p.cp != nil && err != nil && !errors.Is(err, stream.ErrInterrupted) {
		// A failed continuous run: the next one resumes the dead letters
		// from its last checkpoint.
		closeDL = dl.suspend
	}
	if cerr := closeDL(); cerr != nil && err == nil {
		err = cerr
		sum.Err = cerr
	}
	// The sinks have committed (their Run returned nil) only when the
	// run succeeded: only then is what the alerts stages announced kept.
	for _, name := range p.cfg.Order() {
		if a := p.alerts[name]; a != nil {
			if cerr := a.commit(err == nil); cerr != nil && err == nil {
				err = cerr
				sum.Err = cerr
			}
		}
	}
	head, aerr := p.record(sum, err)
	p.audited = head
	if aerr != nil && err == nil {
		err = aerr
		sum.Err = aerr
	}
	return sum, err
}

func (p *Plan) stopTimeout(opts RunOptions) time.Duration {
	switch {
	case opts.StopTimeout > 0:
		return opts.StopTimeout
	case p.cfg.StopTimeout > 0:
		return p.cfg.StopTimeout
	}
	return config.DefaultStopTimeout
}

// stopDeadline returns ctx cancelled when a graceful stop (opts.Stop) has
// not finished within the stop timeout, and a function that reports, once
// the run is over, whether that happened.
func (p *Plan) stopDeadline(ctx context.Context, opts RunOptions) (context.Context, func() bool) {
	if opts.Stop == nil {
		return ctx, func() bool { return false }
	}
	ctx, cancel := context.WithCancelCause(ctx)
	errLate := errors.New("stop timeout")
	over := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-opts.Stop:
		case <-over:
			return
		}
		p.env.Log.Info("graceful stop: draining", "stop_timeout", p.stopTimeout(opts))
		t := time.NewTimer(p.stopTimeout(opts))
		defer t.Stop()
		select {
		case <-t.C:
			p.env.Log.Warn("graceful stop did not finish within stop_timeout: cancelling the run", "stop_timeout", p.stopTimeout(opts))
			cancel(errLate)
		case <-over:
		}
	}()
	return ctx, func() bool {
		close(over)
		<-done
		late := errors.Is(context.Cause(ctx), errLate)
		cancel(nil)
		return late
	}
}

// DeadLetterPath is where the run writes rejected rows.
func (p *Plan) DeadLetterPath() string { return p.cfg.DeadLetter }

// Close frees the rules' instances and modules. Connectors belong to
// Env.Connectors and are closed by its owner.
func (p *Plan) Close(ctx context.Context) {
	for _, r := range p.rules {
		r.close(ctx)
	}
	if p.state != nil {
		p.state.Close()
		p.state = nil
	}
}
