package ruletest_test

import (
	"context"
	"fmt"

	"github.com/vigie-edu/vigie/rules/ruletest"
)

// A rule author's golden cases, run against a compiled rule: this one
// copies its input x to its output y and traps on a batch whose first x is
// negative.
func ExampleRunner() {
	suite, err := ruletest.Parse("identity.cases.toml", []byte(`
[[case]]
name = "y is x"
[case.input]
x = [1, "null", 3]
[case.expect]
y = [1, "null", 3]

[[case]]
name = "a wrong expectation"
[case.input]
x = [5]
[case.expect]
y = [6]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	runner, err := ruletest.NewRunner(ctx, ruletest.NewConfig().WithCacheDir(""))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer runner.Close(ctx)
	report, err := runner.Run(ctx, "../../internal/wasmhost/testdata/trap.wasm", suite)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range report.Cases {
		fmt.Println(c.Name, c.Pass, c.Diffs)
	}
	fmt.Println(report.Failed(), "failed")
	// Output:
	// y is x true []
	// a wrong expectation false [{0 y 6 5}]
	// 1 failed
}
