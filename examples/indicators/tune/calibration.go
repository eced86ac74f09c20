package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/vigie-edu/vigie/indicators"
)

// calibrationReport prints, for the pack of c, the reliability of each
// student's chance of a drift (Result.Chance: calib_a, calib_b over the
// year's highest risk) by tenth of the scale, the Brier score against
// "drifts this year", and the calib_a, calib_b a logistic fit on this
// academy would give (fit them on the tuning seeds, report on another).
func calibrationReport(w io.Writer, c *indicators.Config, studs []student) error {
	res := make([]indicators.Result, len(studs))
	var wg sync.WaitGroup
	nw := runtime.GOMAXPROCS(0)
	for k := range nw {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ev []indicators.Event
			for i := k; i < len(studs); i += nw {
				ev = append(ev[:0], studs[i].Events...)
				res[i] = c.Evaluate(studs[i].ID, ev)
			}
		}()
	}
	wg.Wait()
	type bin struct {
		n, pos int
		sum    float64
	}
	var bins [10]bin
	brier, brierRaw := 0.0, 0.0
	xs, ys := make([]float64, len(studs)), make([]float64, len(studs))
	for i, s := range studs {
		y := 0.0
		if s.Drifts {
			y = 1
		}
		p := res[i].Chance
		b := &bins[min(9, int(p*10))]
		b.n++
		b.sum += p
		if s.Drifts {
			b.pos++
		}
		brier += (p - y) * (p - y)
		brierRaw += (res[i].MaxRisk - y) * (res[i].MaxRisk - y)
		xs[i], ys[i] = res[i].Score, y
	}
	n := float64(len(studs))
	fmt.Fprintf(w, "| chance | students | mean chance | share who drift |\n|---|---|---|---|\n")
	for k, b := range bins {
		if b.n == 0 {
			fmt.Fprintf(w, "| %.1f–%.1f | 0 | | |\n", float64(k)/10, float64(k+1)/10)
			continue
		}
		fmt.Fprintf(w, "| %.1f–%.1f | %d | %.3f | %.3f |\n", float64(k)/10, float64(k+1)/10, b.n, b.sum/float64(b.n), float64(b.pos)/float64(b.n))
	}
	lx := make([]float64, len(xs))
	for i, x := range xs {
		lx[i] = indicators.Logit(x)
	}
	a, bb := fitLogistic(lx, ys)
	fmt.Fprintf(w, "\nBrier score %.4f (the year's highest risk: %.4f; a constant at the drift rate: %.4f)\n", brier/n, brierRaw/n, baseBrier(ys))
	fmt.Fprintf(w, "logistic fit on this academy: calib_a=%.4f,calib_b=%.4f\n", a, bb)
	fmt.Fprintf(w, "isotonic fit on this academy: calib_points=%s\n", isotonic(xs, ys))
	return nil
}

func baseBrier(ys []float64) float64 {
	m := 0.0
	for _, y := range ys {
		m += y
	}
	m /= float64(len(ys))
	return m * (1 - m)
}

// fitLogistic fits P(y=1) = 1/(1+exp(-(a + b x))) by Newton's method.
func fitLogistic(xs, ys []float64) (a, b float64) {
	for range 50 {
		var g0, g1, h00, h01, h11 float64
		for i, x := range xs {
			p := 1 / (1 + math.Exp(-(a + b*x)))
			r := ys[i] - p
			g0 += r
			g1 += r * x
			v := p * (1 - p)
			h00 += v
			h01 += v * x
			h11 += v * x * x
		}
		det := h00*h11 - h01*h01
		if det == 0 {
			break
		}
		da, db := (h11*g0-h01*g1)/det, (h00*g1-h01*g0)/det
		a, b = a+da, b+db
		if math.Abs(da)+math.Abs(db) < 1e-9 {
			break
		}
	}
	return a, b
}

// isotonic fits a monotone map from x to the share of y by pooling
// adjacent violators over bins of x (edges below), and returns it as
// calib_points (x:chance at each bin's mean x).
func isotonic(xs, ys []float64) string {
	edges := []float64{0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001}
	type blk struct{ n, sx, sy float64 }
	bl := make([]blk, len(edges)-1)
	for i, x := range xs {
		k := 0
		for k+1 < len(bl) && x >= edges[k+1] {
			k++
		}
		bl[k].n++
		bl[k].sx += x
		bl[k].sy += ys[i]
	}
	var st []blk
	for _, b := range bl {
		if b.n == 0 {
			continue
		}
		st = append(st, b)
		for len(st) > 1 && st[len(st)-2].sy/st[len(st)-2].n >= st[len(st)-1].sy/st[len(st)-1].n {
			a, b := st[len(st)-2], st[len(st)-1]
			st = append(st[:len(st)-2], blk{a.n + b.n, a.sx + b.sx, a.sy + b.sy})
		}
	}
	var parts []string
	for _, b := range st {
		parts = append(parts, fmt.Sprintf("%.3f:%.4f", b.sx/b.n, b.sy/b.n))
	}
	return strings.Join(parts, ",")
}
