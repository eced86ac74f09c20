// Package suggest finds the likely intended word behind a typo, for the
// "did you mean" of error messages about keys, options, connectors and
// rule parameters. It depends on the standard library only (rule SDK code
// built for WebAssembly uses it too).
package suggest

import (
	"strconv"
	"strings"
)

// Closest returns the candidate nearest to word, ignoring case, if it is
// near enough to be a likely typo (at most one edit per five letters, and
// never more than three), or "".
func Closest(word string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if c == word {
			continue
		}
		limit := min(1+len([]rune(c))/5, 3)
		if n := len([]rune(word)) - len([]rune(c)); n > limit || -n > limit {
			continue
		}
		d := Distance(strings.ToLower(word), strings.ToLower(c))
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// DidYouMean returns ` (did you mean "x"?)` for the closest candidate, or
// "".
func DidYouMean(word string, candidates []string) string {
	if c := Closest(word, candidates); c != "" {
		return " (did you mean " + strconv.Quote(c) + "?)"
	}
	return ""
}

// Hint returns DidYouMean's suggestion or, when no candidate is close
// enough, ` (LABEL: a, b, c)` listing every candidate; "" when there is
// none. It is the tail of every "unknown X" message that can name what
// was meant or what exists.
func Hint(word string, candidates []string, label string) string {
	if s := DidYouMean(word, candidates); s != "" {
		return s
	}
	if len(candidates) == 0 {
		return ""
	}
	return " (" + label + ": " + strings.Join(candidates, ", ") + ")"
}

// Distance is the optimal string alignment distance between a and b: the
// Levenshtein distance where swapping two adjacent runes counts as one edit.
func Distance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// d[i][j] is the distance between x[:i] and y[:j].
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
