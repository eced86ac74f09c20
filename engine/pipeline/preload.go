package pipeline

import (
	"context"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/internal/wasmhost"
)

// preload is a rule module loaded in the background (preloadRules).
type preload struct {
	mod  *wasmhost.Module
	err  error
	done chan struct{} // closed once mod and err are set
}

// preloadRules loads the modules of the pipeline's rules, one after the
// other, in a goroutine of their own, while Prepare starts the connectors
// and asks the sources for their schemas: compiling a rule does not need
// its input's schema, and a source's schema waits for its plugin process
// to start (about 10 ms on an idle machine), so the two overlap instead
// of adding up. prepareRule takes each module (loadRule); Prepare ends
// with closePreloads, which waits for the goroutine and closes the modules
// nobody took (a rule whose input failed to prepare).
func (p *Plan) preloadRules(ctx context.Context) {
	if p.env.Rules == nil || len(p.cfg.Rules) == 0 {
		return
	}
	p.preloads = make(map[string]*preload, len(p.cfg.Rules))
	rules := make([]*config.Rule, len(p.cfg.Rules))
	for i, r := range p.cfg.Rules {
		rules[i] = r
		p.preloads[r.Name] = &preload{done: make(chan struct{})}
	}
	loads := make([]*preload, len(rules))
	for i, r := range rules {
		loads[i] = p.preloads[r.Name]
	}
	go func() {
		for i, r := range rules {
			loads[i].mod, loads[i].err = p.env.Rules.Load(ctx, r.Module, wasmhost.NewLoadConfig().WithSHA256(r.SHA256))
			close(loads[i].done)
			p.env.Log.Debug("TL preloaded")
		}
	}()
}

// loadRule returns r's module: the one preloadRules loaded, or loaded now.
// The caller owns it.
func (p *Plan) loadRule(ctx context.Context, r *config.Rule) (*wasmhost.Module, error) {
	if pl := p.preloads[r.Name]; pl != nil {
		delete(p.preloads, r.Name)
		<-pl.done
		return pl.mod, pl.err
	}
	return p.env.Rules.Load(ctx, r.Module, wasmhost.NewLoadConfig().WithSHA256(r.SHA256))
}

// closePreloads waits for the modules preloadRules loads that no rule
// took, and closes them.
func (p *Plan) closePreloads(ctx context.Context) {
	for name, pl := range p.preloads {
		<-pl.done
		if pl.mod != nil {
			pl.mod.Close(ctx)
		}
		delete(p.preloads, name)
	}
}
