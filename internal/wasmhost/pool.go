package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Pool holds up to Size instances of one module, all with the same
// parameters and limits, so that one rule can use every core: each worker
// takes an instance with Get, evaluates a batch and gives it back with Put.
// The pool does not order anything: a caller that runs batches in parallel
// re-orders their results itself. A Pool is safe for concurrent use.
type Pool struct {
	module *Module
	params map[string]any
	limits Limits
	size   int

	idle   chan *Instance
	tokens chan struct{} // one per instance not yet created

	mu     sync.Mutex
	all    []*Instance
	closed bool
}

// ErrPoolClosed is returned by Get on a closed pool.
var ErrPoolClosed = errors.New("instance pool is closed")

// NewPool returns a pool of up to size instances (size <= 0: GOMAXPROCS).
// It creates one instance at once, so that bad parameters or a module that
// does not start within its limits are reported here; the others are
// created by Get when needed. Close the pool when done.
func (m *Module) NewPool(ctx context.Context, params map[string]any, limits Limits, size int) (*Pool, error) {
	if size <= 0 {
		size = runtime.GOMAXPROCS(0)
	}
	p := &Pool{
		module: m, params: params, limits: limits, size: size,
		idle:   make(chan *Instance, size),
		tokens: make(chan struct{}, size),
	}
	for range size - 1 {
		p.tokens <- struct{}{}
	}
	inst, err := m.NewInstance(ctx, params, limits)
	if err != nil {
		return nil, err
	}
	p.all = append(p.all, inst)
	p.idle <- inst
	return p, nil
}

// Size returns the most instances the pool holds.
func (p *Pool) Size() int { return p.size }

// Get returns an idle instance, creating one when none is idle and the pool
// is not full, else waiting for a Put or the end of ctx. The caller owns
// the instance until it gives it back with Put, and must not use it from
// two goroutines at once.
func (p *Pool) Get(ctx context.Context) (*Instance, error) {
	select {
	case inst := <-p.idle:
		return p.checkOpen(ctx, inst)
	default:
	}
	select {
	case inst := <-p.idle:
		return p.checkOpen(ctx, inst)
	case <-p.tokens:
		inst, err := p.module.NewInstance(ctx, p.params, p.limits)
		if err != nil {
			p.tokens <- struct{}{}
			return nil, fmt.Errorf("instance pool: %w", err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			_ = inst.Close(ctx)
			return nil, ErrPoolClosed
		}
		p.all = append(p.all, inst)
		return inst, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *Pool) checkOpen(ctx context.Context, inst *Instance) (*Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	return inst, nil
}

// Put gives back an instance obtained from Get. An instance whose last call
// failed may be put back: it re-instantiates itself when next used.
func (p *Pool) Put(inst *Instance) {
	if inst == nil {
		return
	}
	p.idle <- inst // never blocks: at most size instances exist
}

// Close closes every instance the pool created, idle or not: call it once
// every worker is done (an instance must not be in use while it is
// closed). Get fails after Close.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for _, inst := range p.all {
		errs = append(errs, inst.Close(ctx))
	}
	p.all = nil
	return errors.Join(errs...)
}
