package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// buildTags are the tags every build of the app uses (as make build and make test do).
const buildTags = "migrated_fynedo"

// repoRoot is the module's root directory: where go.mod is, found from the working
// directory up (go run and go test run in different directories).
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the Linkdesk module")
	}
	return filepath.Dir(gomod), nil
}

var fyneVersion = regexp.MustCompile(`(?m)^Version\s*=\s*"([^"]+)"`)

// projectVersion is the version the packages carry: the nearest tag (`git describe`,
// without a leading v) when there is one, else FyneApp.toml's Version with the commit
// as build metadata, so every build of a commit is told apart from the release.
func projectVersion(root string) (string, error) {
	if out, err := gitOutput(root, "describe", "--tags", "--dirty"); err == nil && out != "" {
		return strings.TrimPrefix(out, "v"), nil
	}
	toml, err := os.ReadFile(filepath.Join(root, "FyneApp.toml"))
	if err != nil {
		return "", err
	}
	m := fyneVersion.FindSubmatch(toml)
	if m == nil {
		return "", errors.New("FyneApp.toml has no Version")
	}
	v := string(m[1])
	if commit, err := gitOutput(root, "rev-parse", "--short", "HEAD"); err == nil && commit != "" {
		v += "+git." + commit
	}
	return v, nil
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// goBuild runs `go build -trimpath -o out pkg` in root for goos/goarch with extra
// environment (CGO_ENABLED, CC); the tags are the project's.
func goBuild(ctx context.Context, root, out, pkg, goos, goarch string, env ...string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", buildTags, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), append([]string{"GOOS=" + goos, "GOARCH=" + goarch}, env...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %w\n%s", pkg, goos, goarch, err, stderr.Bytes())
	}
	return nil
}

// exeName is name with .exe on Windows.
func exeName(name, goos string) string {
	if goos == "windows" {
		return name + ".exe"
	}
	return name
}

// buildServerBinaries builds linkd and linkdevice for goos/goarch into dir without cgo:
// static binaries that need no C library (linkd's SQLite is pure Go), so the .deb
// depends on nothing and the Windows and macOS builds need no C cross-compiler.
func buildServerBinaries(ctx context.Context, root, dir, goos, goarch string) error {
	for _, name := range []string{"linkd", "linkdevice"} {
		out := filepath.Join(dir, exeName(name, goos))
		if err := goBuild(ctx, root, out, "./cmd/"+name, goos, goarch, "CGO_ENABLED=0"); err != nil {
			return err
		}
	}
	return nil
}
