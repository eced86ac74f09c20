// Package privacy pseudonymises identifier columns: a keyed HMAC-SHA256 of
// each value replaces it, right after the source that read it, so that
// rules, state, dead letters and analyst outputs only ever see pseudonyms.
//
// The same value gets the same pseudonym in every column and every source
// of a pipeline (the MAC covers the value only), so joins on pseudonymised
// columns still work. The key never comes from pipeline.toml: from an
// environment variable or a file ([LoadKey]). Its [Key.ID] (a short hash of
// the key, not the key) is recorded in outputs, so that one can tell which
// key made a pseudonym without learning the key.
//
// A [Lookup] maps pseudonyms back to clear values for the one delivery that
// declares it (see docs/privacy.md).
package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Prefix starts every pseudonym, so that one is recognisable (in a
// dead letter, on the command line of vigie state export).
const Prefix = "ps_"

// macBytes is how much of the 32-byte MAC a pseudonym keeps: 80 bits. For
// n identifiers the chance that two share a pseudonym is about
// n²/2^81: 4e-13 for a million students (see RATIONALE.md).
const macBytes = 10

// PseudonymLen is the length of a pseudonym: Prefix and 16 base32 digits.
const PseudonymLen = len(Prefix) + 16

// MinKeyLen is the shortest key accepted, in bytes (as read: 32 characters
// of `openssl rand -hex 32` output are 128 bits).
const MinKeyLen = 32

// MetaKeyID is the schema metadata key (and so the Parquet key-value
// metadata key) that carries the ID of the key pseudonyms were made with.
const MetaKeyID = "vigie.pseudonym_key_id"

// MetaPseudonymised lists, comma separated, the columns of a schema that
// hold pseudonyms.
const MetaPseudonymised = "vigie.pseudonymised"

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Key is a pseudonymisation key. Safe for concurrent use.
type Key struct {
	secret []byte
	id     string
}

// NewKey makes a key of secret, which must be at least MinKeyLen bytes.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) < MinKeyLen {
		return nil, fmt.Errorf("pseudonymisation key: %d bytes, at least %d needed (openssl rand -hex 32)", len(secret), MinKeyLen)
	}
	sum := sha256.Sum256(secret)
	return &Key{secret: append([]byte(nil), secret...), id: "k" + hex.EncodeToString(sum[:4])}, nil
}

// ErrNoKey is returned by LoadKey when the variable or file it names is
// missing or empty.
var ErrNoKey = errors.New("pseudonymisation key not found")

// LoadKey reads a key from the environment variable env, or else from
// file; surrounding white space is trimmed.
func LoadKey(env, file string) (*Key, error) {
	var secret string
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%w: environment variable %s is not set", ErrNoKey, env)
		}
		secret = v
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoKey, err)
		}
		secret = string(b)
	default:
		return nil, fmt.Errorf("%w: neither key_env nor key_file is set", ErrNoKey)
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil, fmt.Errorf("%w: empty key", ErrNoKey)
	}
	return NewKey([]byte(secret))
}

// ID identifies the key: "k" and the first 4 bytes of its SHA-256 in hex.
// It reveals nothing usable about the key.
func (k *Key) ID() string { return k.id }

// Pseudonym returns the pseudonym of v. For many values, use a
// [Pseudonymiser], which reuses its MAC state.
func (k *Key) Pseudonym(v string) string {
	m := hmac.New(sha256.New, k.secret)
	return string(appendPseudonym(nil, m, []byte(v)))
}

// appendPseudonym appends the pseudonym of v made with m (reset first).
func appendPseudonym(dst []byte, m hash.Hash, v []byte) []byte {
	m.Reset()
	m.Write(v)
	var sum [sha256.Size]byte
	mac := m.Sum(sum[:0])
	dst = append(dst, Prefix...)
	return enc.AppendEncode(dst, mac[:macBytes])
}

// IsPseudonym reports whether s has the form of a pseudonym.
func IsPseudonym(s string) bool {
	if len(s) != PseudonymLen || !strings.HasPrefix(s, Prefix) {
		return false
	}
	_, err := enc.DecodeString(s[len(Prefix):])
	return err == nil
}

// Keys are the current key and, during a rotation, the previous one,
// which is used for lookups only (clear id → pseudonyms made with either).
type Keys struct {
	Current  *Key
	Previous *Key // nil outside a rotation
}

// Pseudonyms returns the pseudonyms of v under each key, current first.
func (ks *Keys) Pseudonyms(v string) []string {
	out := []string{ks.Current.Pseudonym(v)}
	if ks.Previous != nil {
		out = append(out, ks.Previous.Pseudonym(v))
	}
	return out
}

// Supported reports whether a column of type t can be pseudonymised:
// strings, dictionaries of strings and integers (made decimal text).
func Supported(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.INT32, arrow.INT64:
		return true
	case arrow.DICTIONARY:
		return t.(*arrow.DictionaryType).ValueType.ID() == arrow.STRING
	}
	return false
}

// Schema returns s with the columns at cols made utf8 (pseudonyms are
// text) and the key ID and pseudonymised columns in its metadata.
func Schema(s *arrow.Schema, cols []int, keyID string) *arrow.Schema {
	fields := append([]arrow.Field(nil), s.Fields()...)
	names := make([]string, len(cols))
	for i, c := range cols {
		fields[c].Type = arrow.BinaryTypes.String
		names[i] = fields[c].Name
	}
	return arrow.NewSchema(fields, WithKeyID(s.Metadata(), keyID, names))
}

// WithKeyID returns md with MetaKeyID set to keyID and MetaPseudonymised
// to cols (when not empty).
func WithKeyID(md arrow.Metadata, keyID string, cols []string) *arrow.Metadata {
	keys, vals := append([]string(nil), md.Keys()...), append([]string(nil), md.Values()...)
	set := func(k, v string) {
		for i := range keys {
			if keys[i] == k {
				vals[i] = v
				return
			}
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	set(MetaKeyID, keyID)
	if len(cols) > 0 {
		set(MetaPseudonymised, strings.Join(cols, ","))
	}
	out := arrow.NewMetadata(keys, vals)
	return &out
}

// cacheMax bounds a Pseudonymiser's cache of pseudonyms (a few MiB).
const cacheMax = 1 << 16

// Pseudonymiser replaces the identifier columns of one source's batches.
// Not safe for concurrent use: each source stage has its own.
type Pseudonymiser struct {
	key    *Key
	mac    hash.Hash
	cols   []int
	schema *arrow.Schema // of the batches it returns
	// cache maps clear values to pseudonyms: identifiers repeat (a
	// student's rows), and a map hit costs far less than a MAC. It lives
	// in memory only and is bounded (cleared when full).
	cache map[string]string
	buf   []byte
	// lookup, when set, records every pseudonym made with its clear value
	// (for a sink that re-identifies).
	lookup *Lookup
}

// NewPseudonymiser returns a pseudonymiser of the columns named cols of
// batches with schema in. A name absent from in is ignored (a source need
// not have every identifier column); a present column of a type that
// cannot be pseudonymised is an error. It returns nil, nil when in has none
// of the columns.
func NewPseudonymiser(key *Key, in *arrow.Schema, cols []string) (*Pseudonymiser, error) {
	var idx []int
	for i, f := range in.Fields() {
		for _, c := range cols {
			if f.Name == c {
				if !Supported(f.Type) {
					return nil, fmt.Errorf("column %q of type %s cannot be pseudonymised (strings and integers can)", c, f.Type)
				}
				idx = append(idx, i)
			}
		}
	}
	if len(idx) == 0 {
		return nil, nil
	}
	return &Pseudonymiser{
		key:    key,
		mac:    hmac.New(sha256.New, key.secret),
		cols:   idx,
		schema: Schema(in, idx, key.ID()),
		cache:  make(map[string]string),
	}, nil
}

// Schema is the schema of the batches Apply returns.
func (p *Pseudonymiser) Schema() *arrow.Schema { return p.schema }

// Columns are the indexes of the pseudonymised columns.
func (p *Pseudonymiser) Columns() []int { return p.cols }

// RecordTo makes p record the pseudonyms it makes, and their clear values,
// in l.
func (p *Pseudonymiser) RecordTo(l *Lookup) { p.lookup = l }

// Pseudonym returns the pseudonym of v (cached).
func (p *Pseudonymiser) Pseudonym(v []byte) string {
	if s, ok := p.cache[string(v)]; ok {
		return s
	}
	p.buf = appendPseudonym(p.buf[:0], p.mac, v)
	s := string(p.buf)
	if len(p.cache) >= cacheMax {
		clear(p.cache)
	}
	p.cache[string(v)] = s
	if p.lookup != nil {
		p.lookup.add(s, string(v))
	}
	return s
}

// Apply returns a new batch: rec with the identifier columns replaced by
// their pseudonyms (nulls stay null). The caller keeps its reference to rec
// and owns the one returned.
func (p *Pseudonymiser) Apply(mem memory.Allocator, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols := append([]arrow.Array(nil), rec.Columns()...)
	var made []arrow.Array
	defer func() {
		for _, a := range made {
			a.Release()
		}
	}()
	n := int(rec.NumRows())
	var num []byte
	for _, c := range p.cols {
		b := array.NewStringBuilder(mem)
		b.Reserve(n)
		b.ReserveData(n * PseudonymLen)
		in := cols[c]
		for i := range n {
			if in.IsNull(i) {
				b.AppendNull()
				continue
			}
			var v []byte
			switch a := in.(type) {
			case *array.String:
				v = unsafeBytes(a.Value(i))
			case *array.LargeString:
				v = unsafeBytes(a.Value(i))
			case *array.Dictionary:
				v = unsafeBytes(a.Dictionary().(*array.String).Value(a.GetValueIndex(i)))
			case *array.Int64:
				num = strconv.AppendInt(num[:0], a.Value(i), 10)
				v = num
			case *array.Int32:
				num = strconv.AppendInt(num[:0], int64(a.Value(i)), 10)
				v = num
			default:
				b.Release()
				return nil, fmt.Errorf("pseudonymise column %q: unsupported type %s", rec.Schema().Field(c).Name, in.DataType())
			}
			b.Append(p.Pseudonym(v))
		}
		arr := b.NewArray()
		b.Release()
		made = append(made, arr)
		cols[c] = arr
	}
	return array.NewRecordBatch(p.schema, cols, rec.NumRows()), nil
}

// Lookup maps pseudonyms to clear values, for the one sink that declares
// it. It is filled by the pseudonymiser of its source as rows are read,
// lives in memory only and is never written. Safe for concurrent use.
type Lookup struct {
	mu    sync.RWMutex
	clear map[string]string
	prev  *Key // during a rotation: also maps pseudonyms of the previous key
	done  chan struct{}
	once  sync.Once
}

// NewLookup returns an empty lookup; previous, when not nil, makes it map
// the pseudonyms of the previous key too.
func NewLookup(previous *Key) *Lookup {
	return &Lookup{clear: map[string]string{}, prev: previous, done: make(chan struct{})}
}

func (l *Lookup) add(pseudonym, clear string) {
	var old string
	if l.prev != nil {
		old = l.prev.Pseudonym(clear)
	}
	l.mu.Lock()
	l.clear[pseudonym] = clear
	if old != "" {
		l.clear[old] = clear
	}
	l.mu.Unlock()
}

// Done marks the lookup complete: its source has read everything.
func (l *Lookup) Done() { l.once.Do(func() { close(l.done) }) }

// Wait returns a channel closed once the lookup is complete.
func (l *Lookup) Wait() <-chan struct{} { return l.done }

// Clear returns the clear value of a pseudonym, if known so far.
func (l *Lookup) Clear(pseudonym string) (string, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v, ok := l.clear[pseudonym]
	return v, ok
}

// unsafeBytes views s as bytes without copying; the bytes are only read.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
