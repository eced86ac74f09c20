package scaffold

// Where a new project's SDKs come from: a vigie checkout, found around the
// project, around the working directory, or where vigie was built.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Module is the module path of the vigie repository, which holds the Go
// SDK.
const Module = "github.com/vigie-edu/vigie"

// AssemblyScriptSDK is the AssemblyScript SDK, relative to a vigie checkout.
var AssemblyScriptSDK = filepath.Join("rules", "sdk", "assemblyscript", "assembly", "vigie.ts")

// AssemblyScriptVersion returns the assemblyscript version the SDK of the
// checkout at root is built with.
func AssemblyScriptVersion(root string) string {
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	b, err := os.ReadFile(filepath.Join(root, "rules", "sdk", "assemblyscript", "package.json"))
	if err == nil && json.Unmarshal(b, &pkg) == nil && pkg.DevDependencies["assemblyscript"] != "" {
		return pkg.DevDependencies["assemblyscript"]
	}
	return "0.28.20"
}

// CopyAssemblyScriptSDK copies the AssemblyScript SDK of the checkout at
// root into the project at dir (the SDK is one file) and returns its path
// in the project.
func CopyAssemblyScriptSDK(root, dir string) (string, error) {
	const dst = "assembly/vigie.ts"
	return dst, copyRegular(filepath.Join(root, AssemblyScriptSDK), filepath.Join(dir, filepath.FromSlash(dst)))
}

func copyRegular(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// IsReleaseVersion reports whether v names a published version of the
// module (not "(devel)", not a local pseudo-version or a dirty build).
func IsReleaseVersion(v string) bool {
	return strings.HasPrefix(v, "v") && !strings.Contains(v, "+") && !strings.Contains(v, "-0.") &&
		!strings.HasPrefix(v, "v0.0.0-")
}

// FindSDK returns the root of the vigie checkout that holds the SDKs, and
// how it was found (or why none was). With flagPath, only that path is
// tried. Otherwise: the checkout around dir, the one around the working
// directory, then the one this binary was built from.
func FindSDK(flagPath, dir string) (string, string) {
	if flagPath != "" {
		abs, err := filepath.Abs(flagPath)
		if err != nil {
			return "", err.Error()
		}
		if !isVigieRoot(abs) {
			return "", fmt.Sprintf("%s is not a vigie checkout (no go.mod of module %s with rules/sdk)", abs, Module)
		}
		return abs, "--sdk"
	}
	if root := vigieRootAbove(dir); root != "" {
		return root, "the checkout around the project"
	}
	if wd, err := os.Getwd(); err == nil {
		if root := vigieRootAbove(wd); root != "" {
			return root, "the checkout around the working directory"
		}
	}
	if root := buildRoot(); root != "" {
		return root, "the checkout vigie was built from"
	}
	return "", "not around the project or the working directory, and vigie was not built from a checkout"
}

// buildRoot returns the checkout this file was compiled from, when it still
// exists (the path is empty or relative with -trimpath).
func buildRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // rules/scaffold/sdk.go
	if isVigieRoot(root) {
		return root
	}
	return ""
}

func vigieRootAbove(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if isVigieRoot(d) {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func isVigieRoot(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	if modulePath(b) != Module {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, "rules", "sdk"))
	return err == nil && st.IsDir()
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// GoDirective returns the go version of a go.mod ("1.26.0"), or "".
func GoDirective(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}
