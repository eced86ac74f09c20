package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/vigie-edu/vigie/engine/audit"
	"github.com/vigie-edu/vigie/engine/stream"
)

// AuditHead is where a run was recorded in the audit trail.
type AuditHead struct {
	Path string // the log
	Seq  int64  // the run's entry
	Hash string // the SHA-256 of its line: the head of the chain
}

// record appends the run to the pipeline's audit log (engine/audit).
func (p *Plan) record(sum *stream.Summary, runErr error) (AuditHead, error) {
	path := p.cfg.AuditLog
	if path == "" {
		return AuditHead{}, nil
	}
	e := audit.Entry{
		Event:          audit.EventRun,
		Pipeline:       p.cfg.Name,
		PipelineFile:   p.cfg.File,
		DeadLetterPath: p.cfg.DeadLetter,
		KeyID:          p.KeyID(),
		PreviousKeyID:  p.PreviousKeyID(),
	}
	if b, err := os.ReadFile(p.cfg.File); err == nil {
		h := sha256.Sum256(b)
		e.PipelineSHA256 = hex.EncodeToString(h[:])
	}
	rows := func(name string, in bool) int64 {
		if sum == nil {
			return 0
		}
		st, _ := sum.Stage(name)
		if in {
			return st.RowsIn
		}
		return st.RowsOut
	}
	for _, s := range p.cfg.Sources {
		path, _ := s.Options["path"].(string)
		e.Inputs = append(e.Inputs, audit.Stage{Name: s.Name, Connector: s.Connector, Path: p.cfg.Resolve(path), Rows: rows(s.Name, false)})
	}
	for _, r := range p.cfg.Rules {
		var st *ruleStage
		switch x := p.rules[r.Name].(type) {
		case *ruleStage:
			st = x
		case *groupStage:
			st = x.ruleStage
		}
		if st == nil {
			continue
		}
		e.Rules = append(e.Rules, audit.Module{Stage: r.Name, Name: st.mod.Manifest.Name, Version: st.mod.Manifest.Version, SHA256: st.mod.SHA256})
	}
	for _, s := range p.cfg.Sinks {
		path, _ := s.Options["path"].(string)
		o := audit.Stage{Name: s.Name, Connector: s.Connector, Path: p.cfg.Resolve(path), Rows: rows(s.Name, false)}
		if s.Reidentify != nil {
			o.Reidentified = s.Reidentify.Column
		}
		e.Outputs = append(e.Outputs, o)
	}
	if sum != nil {
		e.DeadLetters = sum.DeadLettered()
		e.Status = sum.Status()
	}
	if runErr != nil {
		e.Error = runErr.Error()
	}
	w, head, err := audit.Append(path, e)
	if err != nil {
		return AuditHead{}, fmt.Errorf("record the run in the audit trail: %w", err)
	}
	return AuditHead{Path: path, Seq: w.Seq, Hash: head}, nil
}

// Audit returns where the last run was recorded (zero before a run or
// without an audit log).
func (p *Plan) Audit() AuditHead { return p.audited }
