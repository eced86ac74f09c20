package academy

import (
	"fmt"
	"time"
)

// Half is a half-day: morning or afternoon.
type Half uint8

// The two halves of a school day.
const (
	AM Half = iota
	PM
)

func (h Half) String() string {
	if h == AM {
		return "AM"
	}
	return "PM"
}

// Holiday is a span of days without lessons, first and last day inclusive.
type Holiday struct {
	Name        string
	First, Last time.Time
}

// Period is a grading period (trimester), first and last day inclusive.
type Period struct {
	Name        string // T1, T2, T3
	First, Last time.Time
}

// Slot is one school half-day of the calendar.
type Slot struct {
	Date   time.Time
	Half   Half
	Day    int // index of the school day (0 = first day of the year)
	Week   int // index of the school week
	Month  int // index in Months
	Period int // index in Periods
}

// Calendar is a French school year for one holiday zone: school days run
// Monday to Friday, with no lessons on Wednesday afternoon, nor on weekends,
// holidays and public holidays.
//
// Dates follow the rules of the national calendar (arrêté fixing the
// calendar of the school years): the year starts on the first Monday of
// September; Toussaint and Christmas holidays (two weeks, the same for every
// zone) start on the Saturday between 17 and 23 October and 17 and 23
// December; winter holidays start on the first Saturday on or after 7
// February for zone A, one week later for B, two weeks later for C, and last
// two weeks; spring holidays start eight weeks after the winter ones and
// last two weeks; the year ends on the first Saturday of July. For 2025-2026
// these rules give the published dates (Toussaint 18 Oct - 3 Nov 2025,
// Christmas 20 Dec 2025 - 5 Jan 2026, winter 7/14/21 Feb 2026, spring
// 4/11/18 Apr 2026 for A/B/C, summer 4 July 2026); the zones rotate in
// other years, so other years are approximate. Public holidays: 1 and 11
// November, 25 December, 1 January, Easter Monday, 1 and 8 May, Ascension
// Thursday and the Friday after it (the usual "pont"), Whit Monday.
type Calendar struct {
	Year     int    // the year the school year starts in
	Zone     string // A, B or C
	First    time.Time
	Last     time.Time // last day of lessons
	Holidays []Holiday
	Months   []time.Time // first day of each month, September to the end
	Periods  []Period
	Slots    []Slot
	Weeks    int // number of school weeks
	days     map[time.Time]string
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// onOrAfter returns the first day on or after t that is a wd.
func onOrAfter(t time.Time, wd time.Weekday) time.Time {
	return t.AddDate(0, 0, (int(wd)-int(t.Weekday())+7)%7)
}

// easter returns Easter Sunday (Gregorian, anonymous algorithm).
func easter(y int) time.Time {
	a, b, c := y%19, y/100, y%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 2*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return date(y, time.Month(month), day)
}

// NewCalendar builds the school year starting in September of year for a
// holiday zone (A, B or C).
func NewCalendar(year int, zone string) (*Calendar, error) {
	var shift int
	switch zone {
	case "A":
	case "B":
		shift = 7
	case "C":
		shift = 14
	default:
		return nil, fmt.Errorf("zone %q: want A, B or C", zone)
	}
	if year < 2000 || year > 2100 {
		return nil, fmt.Errorf("year %d out of range", year)
	}
	c := &Calendar{Year: year, Zone: zone, days: map[time.Time]string{}}
	c.First = onOrAfter(date(year, time.September, 1), time.Monday)
	end := onOrAfter(date(year+1, time.July, 1), time.Saturday) // first day of summer
	c.Last = end.AddDate(0, 0, -1)
	span := func(name string, first time.Time, days int) {
		c.Holidays = append(c.Holidays, Holiday{name, first, first.AddDate(0, 0, days-1)})
	}
	toussaint := onOrAfter(date(year, time.October, 17), time.Saturday)
	span("Toussaint", toussaint, 16)
	span("Noël", onOrAfter(date(year, time.December, 17), time.Saturday), 16)
	winter := onOrAfter(date(year+1, time.February, 7), time.Saturday).AddDate(0, 0, shift)
	span("Hiver", winter, 16)
	span("Printemps", winter.AddDate(0, 0, 56), 16)
	e := easter(year + 1)
	for _, h := range []struct {
		name string
		d    time.Time
	}{
		{"Toussaint (1er novembre)", date(year, time.November, 1)},
		{"Armistice", date(year, time.November, 11)},
		{"Noël (25 décembre)", date(year, time.December, 25)},
		{"Jour de l'an", date(year+1, time.January, 1)},
		{"Lundi de Pâques", e.AddDate(0, 0, 1)},
		{"Fête du travail", date(year+1, time.May, 1)},
		{"Victoire 1945", date(year+1, time.May, 8)},
		{"Ascension", e.AddDate(0, 0, 39)},
		{"Pont de l'Ascension", e.AddDate(0, 0, 40)},
		{"Lundi de Pentecôte", e.AddDate(0, 0, 50)},
	} {
		span(h.name, h.d, 1)
	}
	for _, h := range c.Holidays {
		for d := h.First; !d.After(h.Last); d = d.AddDate(0, 0, 1) {
			if _, ok := c.days[d]; !ok {
				c.days[d] = h.Name
			}
		}
	}
	for m := c.First; m.Before(end); m = m.AddDate(0, 1, 0) {
		c.Months = append(c.Months, date(m.Year(), m.Month(), 1))
	}
	c.Periods = []Period{
		{"T1", c.First, date(year, time.November, 30)},
		{"T2", date(year, time.December, 1), date(year+1, time.March, 15)},
		{"T3", date(year+1, time.March, 16), c.Last},
	}
	day, week, lastWeek := -1, -1, time.Time{}
	for d := c.First; !d.After(c.Last); d = d.AddDate(0, 0, 1) {
		n := c.HalfDays(d)
		if n == 0 {
			continue
		}
		day++
		if monday := d.AddDate(0, 0, -(int(d.Weekday())+6)%7); monday != lastWeek {
			week++
			lastWeek = monday
		}
		month := (d.Year()-c.First.Year())*12 + int(d.Month()) - int(c.First.Month())
		period := 0
		for i, p := range c.Periods {
			if !d.Before(p.First) && !d.After(p.Last) {
				period = i
			}
		}
		for h := range n {
			c.Slots = append(c.Slots, Slot{Date: d, Half: Half(h), Day: day, Week: week, Month: month, Period: period})
		}
	}
	c.Weeks = week + 1
	return c, nil
}

// HolidayOn returns the name of the holiday or public holiday on day d, or "".
func (c *Calendar) HolidayOn(d time.Time) string { return c.days[date(d.Year(), d.Month(), d.Day())] }

// HalfDays returns the number of school half-days on day d: 2 on Monday,
// Tuesday, Thursday and Friday, 1 on Wednesday (morning only), 0 on
// weekends, holidays and outside the school year.
func (c *Calendar) HalfDays(d time.Time) int {
	d = date(d.Year(), d.Month(), d.Day())
	if d.Before(c.First) || d.After(c.Last) || c.days[d] != "" {
		return 0
	}
	switch d.Weekday() {
	case time.Saturday, time.Sunday:
		return 0
	case time.Wednesday:
		return 1
	}
	return 2
}

// IsSchoolHalfDay reports whether there are lessons on half h of day d.
func (c *Calendar) IsSchoolHalfDay(d time.Time, h Half) bool { return int(h) < c.HalfDays(d) }
