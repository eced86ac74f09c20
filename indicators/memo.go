package indicators

import (
	"container/list"
	"math"
	"slices"
)

// Memo makes Evaluate incremental for continuous runs (as_of = "latest",
// emit = "per_row"), where the rule is called with a student's timeline
// again and again, each time with the rows that arrived since: it keeps,
// per student, the replay's state before the newest day of the last call
// and the events before that day, and when the next timeline of the same
// student has exactly those events before that day (new rows all dated on
// or after it, as in event-time order), it resumes the replay there instead
// of starting over. Anything else (a late row, another first day, a
// student evicted or never seen) replays the whole timeline. Either way
// the result is Evaluate's, bit for bit: the replay is causal (the state
// before a day depends only on the events dated before it, see the
// package comment), which TestMemoMatchesEvaluate checks on random
// prefixes with late rows and corrections.
//
// A Memo is bounded (least recently used students are dropped past
// maxBytes) and is not safe for concurrent use: one per rule instance.
type Memo struct {
	c        *Config
	maxBytes int
	bytes    int
	entries  map[string]*list.Element
	lru      list.List // of *memoEntry, most recent first
	cal      calendar
	sc       scratch // Evaluate's working memory, reused from call to call
	// Hits and Misses count the calls that resumed and that replayed.
	Hits, Misses int
}

type memoEntry struct {
	student string
	start   int32
	events  []Event // the timeline's events before day start+state.next, sorted
	state   dayState
	bytes   int
}

// NewMemo returns a Memo for c holding at most about maxBytes of state.
// With a fixed report day (c.AsOf is not AsOfLatest) every call replays
// the whole timeline, as Evaluate does; the Memo still saves it looking up
// the school days of the calendar again (c must not change after NewMemo).
func (c *Config) NewMemo(maxBytes int) *Memo {
	m := &Memo{c: c, maxBytes: maxBytes, entries: map[string]*list.Element{}}
	lo := min(c.HistoryFrom, c.DriftFrom) - 400
	hi := max(c.DriftTo, c.TermEnds[len(c.TermEnds)-1]) + 400
	m.cal = calendar{c: c, lo: lo, hd: make([]int8, hi-lo+1)}
	for i := range m.cal.hd {
		m.cal.hd[i] = int8(c.schoolHalfDays(lo + int32(i)))
	}
	m.cal.onsets, m.cal.haveOnsets = c.driftOnsets(nil, &m.cal), true
	return m
}

// Evaluate is c.Evaluate(student, events), resumed from the student's last
// call when it can be. Like Evaluate it fills in the days of marks and
// sorts events.
func (m *Memo) Evaluate(student string, events []Event) Result {
	c := m.c
	if c.AsOf != AsOfLatest || len(events) == 0 || m.maxBytes <= 0 {
		return c.evaluate(student, events, nil, nil, &m.cal, &m.sc)
	}
	for i := range events {
		if events[i].Kind == Mark {
			t := min(events[i].Term, len(c.TermEnds)-1)
			events[i].Day = c.TermEnds[max(t, 0)]
		}
	}
	sortByDay(events, &m.sc)
	start, end := events[0].Day, events[len(events)-1].Day
	var in *dayState
	el := m.entries[student]
	if el != nil {
		e := el.Value.(*memoEntry)
		if e.start == start && e.student == student && start+int32(e.state.next) <= end && e.matches(events) {
			in = &e.state
		}
	}
	if in != nil {
		m.Hits++
	} else {
		m.Misses++
	}
	var snap dayState
	res := c.evaluate(student, events, in, &snap, &m.cal, &m.sc)
	// Keep the state before the report day, and the events before it.
	r := start + int32(snap.next)
	k := 0
	for k < len(events) && events[k].Day < r {
		k++
	}
	if el != nil {
		m.remove(el)
	}
	e := &memoEntry{student: student, start: start, events: slices.Clone(events[:k]), state: snap}
	e.bytes = 64*len(e.events) + 48*len(snap.alerts) + snap.drift.bytes() + len(student) + 512
	if e.bytes > m.maxBytes {
		return res
	}
	m.entries[student] = m.lru.PushFront(e)
	m.bytes += e.bytes
	for m.bytes > m.maxBytes {
		m.remove(m.lru.Back())
	}
	return res
}

func (m *Memo) remove(el *list.Element) {
	e := m.lru.Remove(el).(*memoEntry)
	delete(m.entries, e.student)
	m.bytes -= e.bytes
}

// Len is the number of students held.
func (m *Memo) Len() int { return len(m.entries) }

// matches reports whether the events of ev before the resume day are the
// entry's, in the same order. A correction may differ if it takes effect
// on or after the resume day in both (it changes nothing before).
func (e *memoEntry) matches(ev []Event) bool {
	r := e.start + int32(e.state.next)
	if len(ev) < len(e.events) || (len(ev) > len(e.events) && ev[len(e.events)].Day < r) {
		return false
	}
	late := func(d int32) bool { return d <= 0 || d >= r } // no effect before r
	for i, a := range e.events {
		b := ev[i]
		if a.Kind != b.Kind || a.Day != b.Day || a.Justified != b.Justified || a.Term != b.Term || a.Subject != b.Subject ||
			math.Float64bits(a.Mark) != math.Float64bits(b.Mark) ||
			(a.CorrectedDay != b.CorrectedDay && !(late(a.CorrectedDay) && late(b.CorrectedDay))) {
			return false
		}
	}
	return true
}
