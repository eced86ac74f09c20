package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/vigie-edu/vigie/indicators"
)

// point is one point of a precision–recall curve: the threshold and what
// vigie eval counts there.
type point struct {
	p float64
	q quality
}

// ceilingCurve, when not nil, receives the oracle's curve (alerts re-armed)
// at the thresholds of --sweep.
var ceilingCurve *[]point

// parseSweep reads --sweep, thresholds separated by commas.
func parseSweep(s string) ([]float64, error) {
	var ps []float64
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || p <= 0 || p >= 1 {
			return nil, fmt.Errorf("--sweep: %q is not a threshold in (0, 1)", f)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// packCurve runs the pack of setting set at each threshold: raise_at = p,
// clear_below = p/2 and, when ABS_DRIFT is on, drift_min = p.
func packCurve(set string, studs []student, ps []float64) ([]point, error) {
	var out []point
	for _, p := range ps {
		c, err := configOf(set)
		if err != nil {
			return nil, err
		}
		c.RaiseAt, c.ClearBelow = p, p/2
		if c.DriftMin > 0 {
			c.DriftMin = p
		}
		out = append(out, point{p, evaluate(c, studs, false)})
	}
	return out, nil
}

// printCurve writes a curve as a Markdown table.
func printCurve(w io.Writer, name string, pts []point) {
	fmt.Fprintf(w, "\n%s\n\n| threshold | recall | precision | median lead | false alerts / 1,000 / month |\n|---|---|---|---|---|\n", name)
	for _, pt := range pts {
		fmt.Fprintf(w, "| %.2f | %.3f | %.3f | %.0f | %.2f |\n", pt.p, pt.q.Recall, pt.q.Precision, pt.q.MedianLeadDays, pt.q.FalsePer1000)
	}
}

// writeSVG draws the precision–recall curves (recall on x, precision on
// y) and the target corner (recall >= 0.74, precision >= 0.55).
func writeSVG(path, title string, curves map[string][]point) error {
	const W, H, L, B, T, R = 560, 440, 60, 50, 40, 150
	x := func(r float64) float64 { return L + r*(W-L-R) }
	y := func(p float64) float64 { return H - B - p*(H-B-T) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", L, title)
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(v), y(0), x(v), y(1))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x(0), y(v), x(1), y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.1f</text>`+"\n", x(v), y(0)+16, v)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%.1f</text>`+"\n", x(0)-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">recall (dropouts alerted before the dropout)</text>`+"\n", x(0.5), H-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">precision (alerted students with a true alert)</text>`+"\n", y(0.5))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#2a2" fill-opacity="0.12" stroke="#2a2" stroke-dasharray="4 3"/>`+"\n",
		x(0.74), y(1), x(1)-x(0.74), y(0.55)-y(1))
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#2a2">target</text>`+"\n", x(0.75), y(0.57))
	colors := []string{"#c22", "#22c", "#888", "#a60"}
	names := make([]string, 0, len(curves))
	for n := range curves {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		col := colors[i%len(colors)]
		var pts []string
		for _, pt := range curves[n] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(pt.q.Recall)), y(float64(pt.q.Precision))))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), col)
		for _, pt := range curves[n] {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %.2f: recall %.3f, precision %.3f</title></circle>`+"\n",
				x(float64(pt.q.Recall)), y(float64(pt.q.Precision)), col, n, pt.p, pt.q.Recall, pt.q.Precision)
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>`+"\n",
			W-R+10, T+20*i, W-R+30, T+20*i, col, W-R+35, T+20*i+4, n)
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// configOf is the default configuration with the k=v,k=v of set.
func configOf(set string) (*indicators.Config, error) {
	c := indicators.DefaultConfig()
	for _, kv := range strings.Split(set, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		var val any = v
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			val = f
		}
		if err := c.Set(k, val); err != nil {
			return nil, err
		}
	}
	return c, nil
}
