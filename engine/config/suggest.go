package config

import "github.com/vigie-edu/vigie/internal/suggest"

// didYouMean returns ` (did you mean "x"?)` or "".
func didYouMean(word string, candidates []string) string {
	return suggest.DidYouMean(word, candidates)
}
