// Package layout has no code: its tests check the repository's layout,
// such as that nothing outside examples/ imports a package under examples/
// (examples may use the product; the product never depends on examples).
package layout
