// Package apisurface lists the exported API of the module's public
// packages, one declaration a line, so that a test can compare it with the
// committed api/surface.txt (as the Go project does with api/go1.*.txt).
//
// Public packages are those a third party can import: everything under the
// module root except internal/ trees, cmd/, examples/ and testdata/.
// Each line names the package (relative to the module root) and one
// exported declaration: a const, var, func, type, method, exported struct
// field or interface method, with its signature as gofmt prints it.
package apisurface

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// Lines returns the sorted API lines of every public package under root,
// the module's root directory.
func Lines(root string) ([]string, error) {
	var lines []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skipDir(rel, d.Name()) {
			return filepath.SkipDir
		}
		pl, err := packageLines(path, rel)
		if err != nil {
			return err
		}
		lines = append(lines, pl...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(lines)
	return slices.Compact(lines), nil
}

// skipDir reports whether the directory rel (relative to the module root,
// slash-separated) holds no public package.
func skipDir(rel, name string) bool {
	switch {
	case name == "internal", name == "testdata", name == "node_modules",
		strings.HasPrefix(name, "."), strings.HasPrefix(name, "_"):
		return true
	case rel == "cmd", rel == "examples", rel == "out":
		return true
	}
	return false
}

// packageLines lists the exported declarations of the non-test Go files
// of dir (one package); a directory without Go files gives none.
func packageLines(dir, rel string) ([]string, error) {
	fset := token.NewFileSet()
	entries, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, file := range entries {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("api surface: %w", err)
		}
		if f.Name.Name == "main" || ignoredByBuild(f) {
			continue
		}
		prefix := rel + ": "
		for _, decl := range f.Decls {
			for _, l := range declLines(fset, decl) {
				lines = append(lines, prefix+l)
			}
		}
	}
	return lines, nil
}

// ignoredByBuild reports whether f is excluded by a "//go:build ignore"
// constraint (generators kept beside a package).
func ignoredByBuild(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if strings.HasPrefix(c.Text, "//go:build") && strings.Contains(c.Text, "ignore") {
				return true
			}
		}
	}
	return false
}

func declLines(fset *token.FileSet, decl ast.Decl) []string {
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() {
			return nil
		}
		name := d.Name.Name
		if d.Recv != nil {
			recv := receiverType(d.Recv.List[0].Type)
			if !ast.IsExported(recv) {
				return nil
			}
			name = "(" + exprString(fset, d.Recv.List[0].Type) + ") " + name
		}
		return []string{"func " + name + strings.TrimPrefix(exprString(fset, d.Type), "func")}
	case *ast.GenDecl:
		var lines []string
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.ValueSpec:
				for _, n := range s.Names {
					if !n.IsExported() {
						continue
					}
					l := d.Tok.String() + " " + n.Name
					if s.Type != nil {
						l += " " + exprString(fset, s.Type)
					}
					lines = append(lines, l)
				}
			case *ast.TypeSpec:
				if !s.Name.IsExported() {
					continue
				}
				lines = append(lines, typeLines(fset, s)...)
			}
		}
		return lines
	}
	return nil
}

func typeLines(fset *token.FileSet, s *ast.TypeSpec) []string {
	head := "type " + s.Name.Name
	if s.TypeParams != nil {
		head += "[" + fieldListString(fset, s.TypeParams) + "]"
	}
	if s.Assign.IsValid() {
		return []string{head + " = " + exprString(fset, s.Type)}
	}
	switch t := s.Type.(type) {
	case *ast.StructType:
		lines := []string{head + " struct"}
		for _, f := range t.Fields.List {
			typ := exprString(fset, f.Type)
			if len(f.Names) == 0 { // embedded
				if ast.IsExported(receiverType(f.Type)) {
					lines = append(lines, head+", embedded "+typ)
				}
				continue
			}
			for _, n := range f.Names {
				if n.IsExported() {
					lines = append(lines, head+", "+n.Name+" "+typ)
				}
			}
		}
		return lines
	case *ast.InterfaceType:
		lines := []string{head + " interface"}
		for _, m := range t.Methods.List {
			if len(m.Names) == 0 {
				lines = append(lines, head+", embedded "+exprString(fset, m.Type))
				continue
			}
			for _, n := range m.Names {
				if n.IsExported() {
					lines = append(lines, head+", "+n.Name+strings.TrimPrefix(exprString(fset, m.Type), "func"))
				}
			}
		}
		return lines
	}
	return []string{head + " " + exprString(fset, s.Type)}
}

// receiverType is the name of the type of a receiver or embedded field:
// T, *T, T[P] or pkg.T give T.
func receiverType(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return receiverType(t.X)
	case *ast.IndexExpr:
		return receiverType(t.X)
	case *ast.IndexListExpr:
		return receiverType(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.Ident:
		return t.Name
	}
	return ""
}

func fieldListString(fset *token.FileSet, fl *ast.FieldList) string {
	var parts []string
	for _, f := range fl.List {
		var names []string
		for _, n := range f.Names {
			names = append(names, n.Name)
		}
		parts = append(parts, strings.Join(names, ", ")+" "+exprString(fset, f.Type))
	}
	return strings.Join(parts, ", ")
}

// exprString prints e on one line, without comments.
func exprString(fset *token.FileSet, e ast.Expr) string {
	var buf bytes.Buffer
	if err := printer.Fprint(&buf, fset, stripComments(e)); err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return strings.Join(strings.Fields(buf.String()), " ")
}

// stripComments removes field comments from struct and interface types
// so that they do not show in signatures.
func stripComments(e ast.Expr) ast.Expr {
	ast.Inspect(e, func(n ast.Node) bool {
		if f, ok := n.(*ast.Field); ok {
			f.Doc, f.Comment = nil, nil
		}
		return true
	})
	return e
}
