package oneroster_test

import (
	"fmt"
	"strings"

	"github.com/vigie-edu/vigie/connectors/oneroster"
)

// The schema of a table depends on the bundle's version.
func ExampleSchema() {
	for _, v := range []string{oneroster.V11, oneroster.V12} {
		var cols []string
		for _, f := range oneroster.Schema("categories", v).Fields() {
			cols = append(cols, f.Name+":"+f.Type.String())
		}
		fmt.Println(strings.Join(cols, " "))
	}
	fmt.Println(oneroster.Schema("roles", oneroster.V11) == nil)
	// Output:
	// sourcedId:utf8 status:utf8 dateLastModified:timestamp[us, tz=UTC] title:utf8
	// sourcedId:utf8 status:utf8 dateLastModified:timestamp[us, tz=UTC] title:utf8 weight:float64
	// true
}
