package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
)

// mingwCC and mingwCXX are Debian's gcc-mingw-w64 C and C++ compilers for 64-bit
// Windows (scripts/deps.sh installs them): Fyne's Windows driver needs cgo, and the
// camera driver (pion/mediadevices, DirectShow) is C++.
const (
	mingwCC  = "x86_64-w64-mingw32-gcc"
	mingwCXX = "x86_64-w64-mingw32-g++"
)

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
	for _, cc := range []string{mingwCC, mingwCXX} {
		if _, err := exec.LookPath(cc); err != nil {
			return built, fmt.Errorf("linkdesk.exe needs %s (Debian package g++-mingw-w64-x86-64; scripts/deps.sh installs it): %w", cc, err)
		}
	}
	exe := filepath.Join(dir, "windows-amd64", "linkdesk.exe")
	// -H windowsgui: no console window behind the app; -static: the C++ runtime
	// (libstdc++, libgcc, winpthread) inside the .exe rather than DLLs beside it.
	if err := goBuildWindowsGUI(ctx, root, exe); err != nil {
		return built, err
	}
	return append(built, exe), nil
}

// goBuildWindowsGUI builds the desktop app as a self-contained Windows GUI program with mingw.
func goBuildWindowsGUI(ctx context.Context, root, exe string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", buildTags,
		"-ldflags", "-H windowsgui -extldflags=-static", "-o", exe, ".")
	cmd.Dir = root
	cmd.Env = append(cmd.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=1", "CC="+mingwCC, "CXX="+mingwCXX)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return errors.Join(fmt.Errorf("go build linkdesk.exe for windows/amd64 with %s: %w", mingwCXX, err), errors.New(string(out)))
	}
	return nil
}
