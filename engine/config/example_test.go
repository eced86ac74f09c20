package config_test

import (
	"errors"
	"fmt"

	"github.com/vigie-edu/vigie/engine/config"
)

func ExampleParse() {
	p, err := config.Parse("/srv/vigie/pipeline.toml", []byte(`
[pipeline]
name = "demo"

[[source]]
name = "attendance"
connector = "csv"
[source.options]
path = "data/attendance.csv"

[[rule]]
name = "absence"
input = "attendance"
module = "rules/absence.wasm"

[[sink]]
name = "flags"
input = "absence"
connector = "parquet"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Order())
	fmt.Println(p.Rules[0].Module)
	fmt.Println(p.DeadLetter)
	fmt.Println(p.Resolve(p.Sources[0].Options["path"].(string)))
	// Output:
	// [attendance absence flags]
	// /srv/vigie/rules/absence.wasm
	// /srv/vigie/out/demo.dead_letter.csv
	// /srv/vigie/data/attendance.csv
}

func ExampleErrors() {
	_, err := config.Parse("pipeline.toml", []byte(`[pipeline]
name = "demo"

[[source]]
name = "attendance"
conector = "csv"

[[sink]]
name = "flags"
input = "attendence"
connector = "parquet"
`))
	fmt.Println(err)
	var e *config.Error
	if errors.As(err, &e) {
		fmt.Println(e.Pos.Line, e.Key)
	}
	// Output:
	// pipeline.toml:4: source[0].connector: missing required key
	// pipeline.toml:6: source[0].conector: unknown key (did you mean "connector"?)
	// pipeline.toml:10: sink[0].input: unknown stage "attendence" (did you mean "attendance"?)
	// 4 source[0].connector
}
