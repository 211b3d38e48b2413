package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layeringRule forbids packages under one directory of the module from depending,
// directly or through other packages, on the packages a forbidden prefix names.
type layeringRule struct {
	from      string // module-relative directory: the package there and every one under it
	forbidden string // import path prefix; "./dir" is the module's dir and every package under it
	tests     bool   // also check the packages' tests (their imports and _test packages)
	why       string
}

// layeringRules are the dependency rules of DESIGN.md's Layout that a build could
// otherwise break silently: the service and the client libraries build without
// cgo and a display, and the screens reach linkd only over HTTP.
var layeringRules = []layeringRule{
	{from: "auth", forbidden: "fyne.io/", tests: true, why: "auth never imports Fyne"},
	{from: "devices", forbidden: "fyne.io/", tests: true, why: "devices never imports Fyne"},
	{from: "server", forbidden: "fyne.io/", tests: true, why: "server never imports Fyne"},
	// ui's tests run a real linkd (server/linkd/linkdtest), so only ui's own code is checked.
	{from: "ui", forbidden: "./server", tests: false, why: "ui reaches linkd over HTTP, never through server's packages"},
}

// layeringTags are the build tag sets the tree is built and tested with.
var layeringTags = []string{"migrated_fynedo", "migrated_fynedo x11 secretservice"}

// goListPackage is the part of `go list -json` output the layering test reads.
type goListPackage struct {
	ImportPath string
	ForTest    string
	Imports    []string
	Error      *struct{ Err string }
}

// TestLayering fails when a package depends, transitively, on a package its layer
// must not use, and names the import chain that does it.
func TestLayering(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command:", err)
	}
	for _, tags := range layeringTags {
		t.Run(strings.ReplaceAll(tags, " ", "+"), func(t *testing.T) {
			module, pkgs := layeringGoList(t, tags)
			if len(pkgs) == 0 {
				t.Fatal("go list found no packages")
			}
			paths := slices.Sorted(maps.Keys(pkgs)) // the package's own build before its test build
			checked := 0
			for _, r := range layeringRules {
				forbidden := r.forbidden
				if dir, ok := strings.CutPrefix(forbidden, "./"); ok {
					forbidden = module + "/" + dir + "/"
				}
				reported := map[string]bool{} // one error per package and rule
				for _, path := range paths {
					owner, isTest := layeringOwner(pkgs[path])
					if isTest && !r.tests || !layeringUnder(owner, module+"/"+r.from) || reported[owner] {
						continue
					}
					checked++
					if chain := layeringChain(pkgs, path, forbidden); chain != nil {
						reported[owner] = true
						t.Errorf("%s: %s depends on %s:\n\t%s", r.why, owner, layeringStrip(chain[len(chain)-1]),
							strings.Join(chain, "\n\t-> "))
					}
				}
			}
			if checked == 0 {
				t.Fatal("no package matched a layering rule: the rules name directories that no longer exist")
			}
		})
	}
}

// layeringGoList runs `go list -deps -test -json` over the module with tags and
// returns the module path and every package by import path (test variants too).
func layeringGoList(t *testing.T, tags string) (string, map[string]goListPackage) {
	t.Helper()
	mod, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", layeringStderr(err))
	}
	module := strings.TrimSpace(string(mod))
	out, err := exec.Command("go", "list", "-e", "-deps", "-test", "-tags", tags,
		"-json=ImportPath,ForTest,Imports,Error", "./...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", layeringStderr(err))
	}
	pkgs := map[string]goListPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goListPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("go list: %s: %s (its imports are unknown)", p.ImportPath, p.Error.Err)
		}
		pkgs[p.ImportPath] = p
	}
	return module, pkgs
}

// layeringOwner is the package of the module p belongs to, and whether p is that
// package's test build (the package compiled with its _test files, or its external
// _test package). Other packages recompiled for a test are not owners: they are
// reached through the imports of the test that needs them.
func layeringOwner(p goListPackage) (owner string, isTest bool) {
	path := layeringStrip(p.ImportPath)
	if strings.HasSuffix(path, ".test") {
		return "", true // a test's generated main package: it imports only the test build
	}
	if p.ForTest == "" {
		return path, false
	}
	if path == p.ForTest || path == p.ForTest+"_test" {
		return p.ForTest, true
	}
	return "", true
}

// layeringChain is the import chain from the package from to the first package
// whose path starts with forbidden, or nil when there is none.
func layeringChain(pkgs map[string]goListPackage, from, forbidden string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if path := layeringStrip(cur); strings.HasPrefix(path, forbidden) || path+"/" == forbidden {
			var chain []string
			for c := cur; c != ""; c = prev[c] {
				chain = append(chain, c)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, imp := range pkgs[cur].Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

// layeringUnder reports whether path is dir or a package under it.
func layeringUnder(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

// layeringStrip drops the " [pkg.test]" suffix go list gives test variants.
func layeringStrip(importPath string) string {
	path, _, _ := strings.Cut(importPath, " ")
	return path
}

// layeringStderr adds the go command's own message to an exec error.
func layeringStderr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return errors.New(err.Error() + ": " + strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
