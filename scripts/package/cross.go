package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
)

// mingwCC is Debian's gcc-mingw-w64 C compiler for 64-bit Windows (scripts/deps.sh
// installs it); Fyne's Windows driver needs cgo.
const mingwCC = "x86_64-w64-mingw32-gcc"

// crossTarget is one system linkd and linkdevice are built for without cgo.
type crossTarget struct{ goos, goarch string }

// serverTargets are the other systems linkd and linkdevice are built for.
var serverTargets = []crossTarget{{"windows", "amd64"}, {"darwin", "amd64"}, {"darwin", "arm64"}}

// crossBuild builds linkd and linkdevice for serverTargets and linkdesk.exe for
// windows/amd64 into dir/GOOS-GOARCH/, one after the other (the machine has few
// cores; the Go build cache makes a second run quick). It returns the files built
// and the first error; a missing mingw compiler is an error, since CI must catch a
// Windows build that breaks.
func crossBuild(ctx context.Context, root, dir string) ([]string, error) {
	var built []string
	for _, t := range serverTargets {
		out := filepath.Join(dir, t.goos+"-"+t.goarch)
		if err := buildServerBinaries(ctx, root, out, t.goos, t.goarch); err != nil {
			return built, err
		}
		built = append(built, filepath.Join(out, exeName("linkd", t.goos)), filepath.Join(out, exeName("linkdevice", t.goos)))
	}
	if _, err := exec.LookPath(mingwCC); err != nil {
		return built, fmt.Errorf("linkdesk.exe needs %s (Debian package gcc-mingw-w64-x86-64; scripts/deps.sh installs it): %w", mingwCC, err)
	}
	exe := filepath.Join(dir, "windows-amd64", "linkdesk.exe")
	// -H windowsgui: no console window behind the app.
	if err := goBuildWindowsGUI(ctx, root, exe); err != nil {
		return built, err
	}
	return append(built, exe), nil
}

// goBuildWindowsGUI builds the desktop app as a Windows GUI program with mingw.
func goBuildWindowsGUI(ctx context.Context, root, exe string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", buildTags,
		"-ldflags", "-H windowsgui", "-o", exe, ".")
	cmd.Dir = root
	cmd.Env = append(cmd.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=1", "CC="+mingwCC)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return errors.Join(fmt.Errorf("go build linkdesk.exe for windows/amd64 with %s: %w", mingwCC, err), errors.New(string(out)))
	}
	return nil
}
