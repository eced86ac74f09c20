package console

// Charts are drawn on the server as inline SVG: no JavaScript on any page
// (see RATIONALE.md, "The console draws its charts in SVG on the server").

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"
)

// palette colours series in order.
var palette = []string{"#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989"}

type svg struct {
	b strings.Builder
}

func (s *svg) f(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

// series is a named line over the chart's x labels.
type series struct {
	Name   string
	Values []float64
}

// lineChart draws series over shared x labels (weeks), with a y axis from
// 0 to the largest value; yFmt formats tick labels.
func lineChart(id, title string, xs []string, ss []series, yFmt func(float64) string) template.HTML {
	const w, h, left, right, top, bottom = 760.0, 260.0, 56.0, 150.0, 28.0, 40.0
	pw, ph := w-left-right, h-top-bottom
	maxY := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			maxY = math.Max(maxY, v)
		}
	}
	if maxY == 0 {
		maxY = 1
	}
	x := func(i int) float64 {
		if len(xs) < 2 {
			return left
		}
		return left + pw*float64(i)/float64(len(xs)-1)
	}
	y := func(v float64) float64 { return top + ph*(1-v/maxY) }
	var s svg
	s.f(`<svg id="%s" class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s">`, esc(id), w, h, esc(title))
	s.f(`<title>%s</title><text x="%g" y="16" class="ctitle">%s</text>`, esc(title), left, esc(title))
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		s.f(`<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" class="grid"/><text x="%g" y="%.1f" class="tick" text-anchor="end">%s</text>`,
			left, left+pw, y(v), y(v), left-6, y(v)+4, esc(yFmt(v)))
	}
	step := max(1, len(xs)/8)
	for i := 0; i < len(xs); i += step {
		s.f(`<text x="%.1f" y="%g" class="tick" text-anchor="middle">%s</text>`, x(i), top+ph+16, esc(shortDate(xs[i])))
	}
	for k, se := range ss {
		col := palette[k%len(palette)]
		var pts []string
		for i, v := range se.Values {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		s.f(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`, col, strings.Join(pts, " "), esc(se.Name))
		s.f(`<rect x="%g" y="%g" width="12" height="12" fill="%s"/><text x="%g" y="%g" class="tick">%s</text>`,
			left+pw+14, top+float64(k)*18, col, left+pw+30, top+float64(k)*18+10, esc(se.Name))
	}
	s.f(`</svg>`)
	return template.HTML(s.b.String())
}

func shortDate(d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return d
	}
	return t.Format("02 Jan")
}

// timelineChart draws a student's year by week: absent half-days (bars
// above the axis), platform sessions (bars below), term marks (dots on a
// 0-20 scale), and each alert's opening (red line) and clearing (green).
func timelineChart(t Timeline, alerts []AlertSpan) template.HTML {
	var dates []string
	dates = append(dates, t.Absences...)
	dates = append(dates, t.Activity...)
	for _, m := range t.Marks {
		dates = append(dates, m.Date)
	}
	for _, a := range alerts {
		dates = append(dates, a.Opened)
		if a.Cleared != "" {
			dates = append(dates, a.Cleared)
		}
	}
	const w, h, left, right = 760.0, 300.0, 64.0, 20.0
	var s svg
	s.f(`<svg id="timeline" class="chart" viewBox="0 0 %g %g" role="img" aria-label="timeline">`, w, h)
	s.f(`<title>Absences, marks and platform activity by week, with alerts</title>`)
	if len(dates) == 0 {
		s.f(`<text x="%g" y="40" class="tick">no events</text></svg>`, left)
		return template.HTML(s.b.String())
	}
	sort.Strings(dates)
	from, _ := time.Parse(time.DateOnly, dates[0])
	to, _ := time.Parse(time.DateOnly, dates[len(dates)-1])
	from = monday(from)
	weeks := int(to.Sub(from).Hours()/24/7) + 1
	pw := w - left - right
	bw := pw / float64(weeks)
	xOf := func(d string) float64 {
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return left
		}
		return left + pw*day.Sub(from).Hours()/24/7/float64(weeks)
	}
	week := func(d string) int {
		day, _ := time.Parse(time.DateOnly, d)
		return int(day.Sub(from).Hours() / 24 / 7)
	}
	abs := make([]int, weeks+1)
	act := make([]int, weeks+1)
	for _, d := range t.Absences {
		abs[week(d)]++
	}
	for _, d := range t.Activity {
		act[week(d)]++
	}
	// Lanes: marks 20..110, absences 130..200 (up from 200), activity 200..270.
	const marksTop, marksBottom, axis = 24.0, 110.0, 200.0
	s.f(`<text x="4" y="%g" class="tick">marks</text><text x="4" y="%g" class="tick">absent</text><text x="4" y="%g" class="tick">online</text>`,
		(marksTop+marksBottom)/2, axis-20, axis+30)
	s.f(`<line x1="%g" x2="%g" y1="%g" y2="%g" class="axis"/>`, left, left+pw, axis, axis)
	for _, v := range []float64{0, 10, 20} {
		yy := marksBottom - (marksBottom-marksTop)*v/20
		s.f(`<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" class="grid"/><text x="%g" y="%.1f" class="tick" text-anchor="end">%g</text>`, left, left+pw, yy, yy, left-6, yy+4, v)
	}
	for i := range weeks {
		x := left + float64(i)*bw
		if abs[i] > 0 {
			hh := math.Min(60, float64(abs[i])*6)
			s.f(`<rect class="absence" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>week of %s: %d absent half-days</title></rect>`,
				x, axis-hh, math.Max(1, bw-1), hh, from.AddDate(0, 0, 7*i).Format(time.DateOnly), abs[i])
		}
		if act[i] > 0 {
			hh := math.Min(60, float64(act[i])*12)
			s.f(`<rect class="activity" x="%.1f" y="%g" width="%.1f" height="%.1f"><title>week of %s: %d platform sessions</title></rect>`,
				x, axis+1, math.Max(1, bw-1), hh, from.AddDate(0, 0, 7*i).Format(time.DateOnly), act[i])
		}
	}
	for _, m := range t.Marks {
		yy := marksBottom - (marksBottom-marksTop)*math.Min(20, math.Max(0, m.Value))/20
		s.f(`<circle class="mark" cx="%.1f" cy="%.1f" r="3"><title>%s %s: %.1f</title></circle>`, xOf(m.Date), yy, esc(m.Subject), esc(m.Date), m.Value)
	}
	for _, a := range alerts {
		x := xOf(a.Opened)
		lx, anchor := x+2, "start"
		if x > w-120 {
			lx, anchor = x-2, "end" // near the right edge: label on the left
		}
		s.f(`<line class="opened" x1="%.1f" x2="%.1f" y1="18" y2="%g"><title>alert %s (%s) opened %s</title></line><text x="%.1f" y="14" class="tick opened-label" text-anchor="%s">%s</text>`,
			x, x, h-10, esc(a.ID), esc(a.Code), esc(a.Opened), lx, anchor, esc(a.Code))
		if a.Cleared != "" {
			x := xOf(a.Cleared)
			s.f(`<line class="cleared" x1="%.1f" x2="%.1f" y1="18" y2="%g"><title>alert %s (%s) cleared %s</title></line>`, x, x, h-10, esc(a.ID), esc(a.Code), esc(a.Cleared))
		}
	}
	for i := 0; i < weeks; i += max(1, weeks/8) {
		s.f(`<text x="%.1f" y="%g" class="tick">%s</text>`, left+float64(i)*bw, h-2, from.AddDate(0, 0, 7*i).Format("02 Jan"))
	}
	s.f(`</svg>`)
	return template.HTML(s.b.String())
}

func monday(t time.Time) time.Time {
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
}

// graphChart draws the pipeline: stages in columns by depth, edges from
// inputs, each box with its kind and counts.
func graphChart(v RunView) template.HTML {
	depth := map[string]int{}
	cols := map[int][]StageView{}
	maxDepth := 0
	for _, st := range v.Stages {
		d := 0
		for _, in := range st.Inputs {
			d = max(d, depth[in]+1)
		}
		depth[st.Name] = d
		cols[d] = append(cols[d], st)
		maxDepth = max(maxDepth, d)
	}
	const bw, bh, gx, gy = 150.0, 62.0, 40.0, 18.0
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c))
	}
	w := float64(maxDepth+1)*(bw+gx) + 10
	h := float64(rows)*(bh+gy) + 10
	pos := map[string][2]float64{}
	for d := 0; d <= maxDepth; d++ {
		for i, st := range cols[d] {
			pos[st.Name] = [2]float64{5 + float64(d)*(bw+gx), 5 + float64(i)*(bh+gy)}
		}
	}
	var s svg
	s.f(`<svg id="graph" class="chart" viewBox="0 0 %g %g" role="img" aria-label="pipeline graph">`, w, h)
	for _, st := range v.Stages {
		to := pos[st.Name]
		for _, in := range st.Inputs {
			from := pos[in]
			s.f(`<line class="edge" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, from[0]+bw, from[1]+bh/2, to[0], to[1]+bh/2)
		}
	}
	for _, st := range v.Stages {
		p := pos[st.Name]
		cls := "stage"
		if st.DeadLettered > 0 {
			cls += " dead"
		}
		s.f(`<g class="%s" data-stage="%s"><rect x="%.1f" y="%.1f" width="%g" height="%g" rx="6"/>`, cls, esc(st.Name), p[0], p[1], bw, bh)
		s.f(`<text x="%.1f" y="%.1f" class="sname">%s</text>`, p[0]+8, p[1]+16, esc(st.Name))
		s.f(`<text x="%.1f" y="%.1f" class="tick">%s</text>`, p[0]+8, p[1]+31, esc(string(st.Kind)))
		s.f(`<text x="%.1f" y="%.1f" class="tick">in %d · out %d</text>`, p[0]+8, p[1]+45, st.RowsIn, st.RowsOut)
		s.f(`<text x="%.1f" y="%.1f" class="tick">dead %d · batches %d</text></g>`, p[0]+8, p[1]+58, st.DeadLettered, st.Batches)
	}
	s.f(`</svg>`)
	return template.HTML(s.b.String())
}
