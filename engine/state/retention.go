package state

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/cockroachdb/pebble"
)

// Expire removes, from every stage's timelines ordered by a date or a
// timestamp, the rows whose event time is before cutoff (wall-clock
// retention, unlike Spec.Retention which counts from the newest row
// seen). A key left with no row in any stage also loses its values (what
// the alerts stage announced about it). It returns the number of records
// removed and is durable when it returns.
func (s *Store) Expire(cutoff time.Time) (int, error) {
	specs, err := s.timelineSpecs()
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	emptied := map[string]bool{} // first key values that lost rows
	for _, t := range specs {
		if t.order < 0 || len(t.keys) == 0 {
			continue
		}
		var cut int64
		switch ty := t.schema.Field(t.order).Type.(type) {
		case *arrow.Date32Type:
			cut = int64(arrow.Date32FromTime(cutoff))
		case *arrow.TimestampType:
			cut = cutoff.UnixNano() / int64(ty.Unit.Multiplier())
		default:
			continue
		}
		prefix := append([]byte{'r'}, t.ns...)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upperBound(prefix)})
		if err != nil {
			return 0, err
		}
		for it.First(); it.Valid(); it.Next() {
			rest := it.Key()[len(prefix):]
			g := 0
			first := ""
			for i, c := range t.keys {
				w := skipOrdered(rest[g:], t.schema.Field(c).Type)
				if w < 0 {
					it.Close()
					return 0, errCorrupt
				}
				if i == 0 && rest[g] == 1 && t.schema.Field(c).Type.ID() == arrow.STRING {
					first = decodeOrderedString(rest[g+1 : g+w-2])
				}
				g += w
			}
			o := rest[g:]
			if len(o) >= 9 && o[0] == 1 && orderedInt64(o[1:9]) < cut {
				if err := b.Delete(it.Key(), nil); err != nil {
					it.Close()
					return 0, err
				}
				n++
				if first != "" {
					emptied[first] = true
				}
			}
		}
		err = it.Error()
		it.Close()
		if err != nil {
			return 0, err
		}
	}
	if err := b.Commit(s.writeOpts()); err != nil {
		return 0, fmt.Errorf("state: expire: %w", err)
	}
	for key := range emptied {
		left := 0
		err := s.visit(key, func(_ string, spec *timelineSpec, _, _ []byte) error {
			if spec != nil {
				left++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		if left == 0 {
			m, err := s.Erase(key)
			if err != nil {
				return n, err
			}
			n += m
		}
	}
	return n, nil
}

// decodeOrderedString reverses appendOrderedString, given the escaped
// bytes without the terminator.
func decodeOrderedString(b []byte) string {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == 0 {
			i++ // skip the escape byte
		}
	}
	return string(out)
}
