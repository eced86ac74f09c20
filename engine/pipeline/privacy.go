package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/privacy"
)

// withheldRaw replaces the raw row of a source's dead letter when
// pseudonymisation is on: the row as read holds clear identifiers, and the
// dead letter output is not a delivery. Origin and line still say where
// the row is, for whoever may open the source.
const withheldRaw = "(withheld: pseudonymisation is on; the row is at origin:line)"

// LoadKeys reads the pipeline's pseudonymisation keys as of now: nil
// when it pseudonymises nothing; the previous key only until the end of
// its previous_key_until day. An unavailable key is a config.Errors at the
// [privacy] table.
func LoadKeys(cfg *config.Pipeline, now time.Time) (*privacy.Keys, error) {
	pr := cfg.Privacy
	if pr == nil || len(pr.Pseudonymise) == 0 {
		return nil, nil
	}
	cur, err := privacy.LoadKey(pr.KeyEnv, pr.KeyFile)
	if err != nil {
		return nil, config.Errors{{Pos: pr.Pos, Key: "privacy", Msg: err.Error(), Err: err}}
	}
	ks := &privacy.Keys{Current: cur}
	if (pr.PreviousKeyEnv != "" || pr.PreviousKeyFile != "") && !now.After(pr.PreviousKeyUntil.Add(24*time.Hour)) {
		prev, err := privacy.LoadKey(pr.PreviousKeyEnv, pr.PreviousKeyFile)
		if err != nil {
			err = fmt.Errorf("previous key (until %s): %w", pr.PreviousKeyUntil.Format(time.DateOnly), err)
			return nil, config.Errors{{Pos: pr.Pos, Key: "privacy.previous_key", Msg: err.Error(), Err: err}}
		}
		ks.Previous = prev
	}
	return ks, nil
}

// KeyID returns the ID of the pseudonymisation key the plan uses, "" when
// nothing is pseudonymised.
func (p *Plan) KeyID() string {
	if p.keys == nil {
		return ""
	}
	return p.keys.Current.ID()
}

// PreviousKeyID returns the ID of the previous key still used for
// lookups, "" when there is none.
func (p *Plan) PreviousKeyID() string {
	if p.keys == nil || p.keys.Previous == nil {
		return ""
	}
	return p.keys.Previous.ID()
}

// Keys returns the plan's pseudonymisation keys, nil when nothing is
// pseudonymised.
func (p *Plan) Keys() *privacy.Keys { return p.keys }

// pseudonymise sets up the pseudonymisation of a source whose connector
// emits schema, and returns the schema downstream stages see.
func (p *Plan) pseudonymise(s *config.Source, stage *sourceStage, schema *arrow.Schema) (*arrow.Schema, error) {
	if p.keys == nil {
		return schema, nil
	}
	ps, err := privacy.NewPseudonymiser(p.keys.Current, schema, p.cfg.Privacy.Pseudonymise)
	if err != nil || ps == nil {
		return schema, err
	}
	stage.pseudo = ps
	if l := p.lookups[s.Name]; l != nil {
		ps.RecordTo(l)
		stage.lookup = l
	}
	return ps.Schema(), nil
}

// emitPseudonymised replaces the identifier columns of rec (borrowed)
// and returns the batch to send, owned by the caller.
func (e *emitter) transform(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	if e.pseudo == nil {
		rec.Retain()
		return rec, nil
	}
	return e.pseudo.Apply(e.mem, rec)
}

// scrub keeps clear identifiers out of a source's dead letter: the raw
// row is withheld and quoted values in the reason are pseudonymised.
func (e *emitter) scrub(d protocol.DeadLetter) protocol.DeadLetter {
	if e.pseudo == nil {
		return d
	}
	d.Raw = withheldRaw
	d.Reason = pseudonymiseQuoted(e.pseudo, d.Reason)
	return d
}

// pseudonymiseQuoted replaces each double-quoted value in s by its
// pseudonym: a connector's reason quotes the offending value, which may be
// an identifier in the wrong column.
func pseudonymiseQuoted(ps *privacy.Pseudonymiser, s string) string {
	if !strings.Contains(s, `"`) {
		return s
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.IndexByte(rest, '"')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest[i+1:], '"')
		if j < 0 { // an unclosed quote: withhold what follows
			b.WriteString(rest[:i+1])
			b.WriteString(`…`)
			break
		}
		b.WriteString(rest[:i+1])
		b.WriteString(ps.Pseudonym([]byte(rest[i+1 : i+1+j])))
		b.WriteByte('"')
		rest = rest[i+2+j:]
	}
	return b.String()
}

// sinkView is what a sink stage does to its input before writing it: keep
// the declared columns, re-identify a column, stamp the schema metadata.
type sinkView struct {
	keep   []int         // columns kept, in order; nil keeps all
	schema *arrow.Schema // of the batches written
	// reid is the index (in schema) of the re-identified column, -1 for
	// none; lookup resolves it.
	reid       int
	lookup     *privacy.Lookup
	unresolved atomic.Int64
}

// sinkView returns the view of a sink over its input schema, nil when
// the sink writes its input as it is.
func (p *Plan) sinkView(s *config.Sink, key string, in *arrow.Schema) (*sinkView, error) {
	if len(s.Columns) == 0 && s.Reidentify == nil && p.keys == nil {
		return nil, nil
	}
	v := &sinkView{reid: -1}
	fields := in.Fields()
	if len(s.Columns) > 0 {
		fields = nil
		for _, c := range s.Columns {
			i := in.FieldIndices(c)
			if len(i) == 0 {
				return nil, config.Errors{{Pos: s.Pos, Key: key + ".columns", Msg: fmt.Sprintf("column %q is not in the sink's input %q (columns: %s)", c, s.Input, fieldList(in))}}
			}
			v.keep = append(v.keep, i[0])
			fields = append(fields, in.Field(i[0]))
		}
	}
	md := in.Metadata()
	if p.keys != nil {
		var pseud []string
		for _, f := range fields {
			if slices.Contains(p.cfg.Privacy.Pseudonymise, f.Name) {
				pseud = append(pseud, f.Name)
			}
		}
		md = *privacy.WithKeyID(md, p.keys.Current.ID(), pseud)
	}
	if r := s.Reidentify; r != nil {
		v.reid = slices.IndexFunc(fields, func(f arrow.Field) bool { return f.Name == r.Column })
		if v.reid < 0 {
			return nil, config.Errors{{Pos: s.Pos, Key: key + ".reidentify.column", Msg: fmt.Sprintf("column %q is not in what the sink writes", r.Column)}}
		}
		if fields[v.reid].Type.ID() != arrow.STRING {
			return nil, config.Errors{{Pos: s.Pos, Key: key + ".reidentify.column", Msg: fmt.Sprintf("column %q is %s, not the pseudonyms (utf8) of a source", r.Column, fields[v.reid].Type)}}
		}
		v.lookup = p.lookups[r.Lookup]
		md = withMeta(md, "vigie.reidentified", r.Column)
	}
	v.schema = arrow.NewSchema(fields, &md)
	return v, nil
}

func withMeta(md arrow.Metadata, k, val string) arrow.Metadata {
	keys, vals := append([]string(nil), md.Keys()...), append([]string(nil), md.Values()...)
	if i := md.FindKey(k); i >= 0 {
		vals[i] = val
	} else {
		keys, vals = append(keys, k), append(vals, val)
	}
	return arrow.NewMetadata(keys, vals)
}

// apply returns the batch to write for rec, whose reference it takes.
func (v *sinkView) apply(ctx context.Context, mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	defer rec.Release()
	cols := rec.Columns()
	if v.keep != nil {
		cols = make([]arrow.Array, len(v.keep))
		for i, c := range v.keep {
			cols[i] = rec.Column(c)
		}
	} else {
		cols = append([]arrow.Array(nil), cols...)
	}
	if v.reid >= 0 {
		clear, err := v.reidentify(ctx, mem, cols[v.reid].(*array.String))
		if err != nil {
			return nil, err
		}
		defer clear.Release()
		cols[v.reid] = clear
	}
	return array.NewRecordBatch(v.schema, cols, rec.NumRows()), nil
}

// reidentify resolves pseudonyms; one not known yet waits for the lookup
// source to end. One that stays unknown is written as it is (a pseudonym,
// never a wrong name) and counted.
func (v *sinkView) reidentify(ctx context.Context, mem memory.Allocator, in *array.String) (arrow.Array, error) {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(in.Len())
	for i := range in.Len() {
		if in.IsNull(i) {
			b.AppendNull()
			continue
		}
		ps := in.Value(i)
		c, ok := v.lookup.Clear(ps)
		if !ok {
			select {
			case <-v.lookup.Wait():
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			c, ok = v.lookup.Clear(ps)
		}
		if !ok {
			v.unresolved.Add(1)
			c = ps
		}
		b.Append(c)
	}
	return b.NewArray(), nil
}

// checkLookups checks, once every stage is prepared, that the source each
// re-identifying sink looks up pseudonymises something, and that every
// column [privacy] names exists somewhere: a misspelt identifier column
// would otherwise travel in clear without a word.
func (p *Plan) checkLookups() config.Errors {
	var errs config.Errors
	if pr := p.cfg.Privacy; pr != nil && len(p.schemas) == len(p.cfg.Order()) {
		for _, c := range pr.Pseudonymise {
			found := false
			for _, s := range p.cfg.Sources {
				found = found || p.schemas[s.Name] != nil && len(p.schemas[s.Name].FieldIndices(c)) > 0
			}
			if !found {
				errs = append(errs, &config.Error{Pos: pr.Pos, Key: "privacy.pseudonymise", Msg: fmt.Sprintf("no source has a column %q to pseudonymise", c)})
			}
		}
		for _, c := range pr.Personal {
			found := false
			for _, sc := range p.schemas {
				found = found || len(sc.FieldIndices(c)) > 0
			}
			if !found {
				errs = append(errs, &config.Error{Pos: pr.Pos, Key: "privacy.personal", Msg: fmt.Sprintf("no stage has a column %q", c)})
			}
		}
	}
	for i, s := range p.cfg.Sinks {
		r := s.Reidentify
		if r == nil || p.keys == nil {
			continue
		}
		if src := p.sources[r.Lookup]; src != nil && src.pseudo == nil {
			errs = append(errs, &config.Error{Pos: s.Pos, Key: fmt.Sprintf("sink[%d].reidentify.lookup", i), Msg: fmt.Sprintf("source %q has none of the pseudonymised columns: it cannot resolve pseudonyms", r.Lookup)})
		}
	}
	return errs
}

// newLookups makes the lookup of every source a sink re-identifies from.
func newLookups(cfg *config.Pipeline, keys *privacy.Keys) map[string]*privacy.Lookup {
	out := map[string]*privacy.Lookup{}
	if keys == nil {
		return out
	}
	for _, s := range cfg.Sinks {
		if r := s.Reidentify; r != nil && out[r.Lookup] == nil {
			out[r.Lookup] = privacy.NewLookup(keys.Previous)
		}
	}
	return out
}

// PersonalFlow says which personal columns ([privacy] personal and
// pseudonymise) reach one output, and in what form.
type PersonalFlow struct {
	Output string // a sink's name
	// Columns are "name (form)", form being "pseudonym", "clear" or
	// "clear, re-identified".
	Columns []string
}

// PersonalFlows lists, for every sink, the personal columns it writes.
// Columns are followed by name, as they travel (a rule output that
// derives from a personal column under another name is not followed).
func (p *Plan) PersonalFlows() []PersonalFlow {
	personal := p.cfg.Privacy.PersonalColumns()
	var out []PersonalFlow
	for _, s := range p.cfg.Sinks {
		f := PersonalFlow{Output: s.Name}
		schema := p.schemas[s.Name]
		if schema == nil {
			continue
		}
		for _, fld := range schema.Fields() {
			if !slices.Contains(personal, fld.Name) {
				continue
			}
			form := "clear"
			if p.keys != nil && slices.Contains(p.cfg.Privacy.Pseudonymise, fld.Name) {
				form = "pseudonym"
				if s.Reidentify != nil && s.Reidentify.Column == fld.Name {
					form = "clear, re-identified"
				}
			}
			f.Columns = append(f.Columns, fld.Name+" ("+form+")")
		}
		out = append(out, f)
	}
	return out
}
