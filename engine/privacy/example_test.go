package privacy_test

import (
	"fmt"
	"strings"

	"github.com/vigie-edu/vigie/engine/privacy"
)

// A pseudonym depends on the key and the value only: the same student has
// the same pseudonym in every source, and another key gives another one.
func ExampleKey_Pseudonym() {
	key, err := privacy.NewKey([]byte(strings.Repeat("example key ", 3)))
	if err != nil {
		panic(err)
	}
	p := key.Pseudonym("S0001")
	fmt.Println(len(p), privacy.IsPseudonym(p), p == key.Pseudonym("S0001"))
	fmt.Println(key.ID())
	// Output:
	// 19 true true
	// k4883d374
}
