package main

import (
	"context"
	"debug/macho"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCrossBuilds builds what make package builds for Windows and macOS and checks
// each file is an executable for its system: a change that breaks another system's
// build fails here. Without the mingw compiler it fails in CI (scripts/deps.sh
// installs it) and is skipped elsewhere.
func TestCrossBuilds(t *testing.T) {
	if _, err := exec.LookPath(mingwCXX); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; scripts/deps.sh installs g++-mingw-w64-x86-64", mingwCXX)
		}
		t.Skipf("%s is not installed (apt-get install g++-mingw-w64-x86-64)", mingwCXX)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(sharedDir, "cross")
	built, err := crossBuild(context.Background(), root, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(built) != 7 {
		t.Errorf("built %d files, want 7: %v", len(built), built)
	}
	for _, f := range []string{"linkd.exe", "linkdevice.exe", "linkdesk.exe"} {
		p, err := pe.Open(filepath.Join(dir, "windows-amd64", f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if p.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
			t.Errorf("%s: machine %#x, want amd64", f, p.Machine)
		}
		if oh, ok := p.OptionalHeader.(*pe.OptionalHeader64); ok && f == "linkdesk.exe" && oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
			t.Errorf("linkdesk.exe: subsystem %d, want the GUI one (no console window)", oh.Subsystem)
		}
		// Self-contained: no C++ runtime DLL that a Windows machine would lack.
		if libs, err := p.ImportedLibraries(); err == nil {
			for _, l := range libs {
				if l := strings.ToLower(l); strings.HasPrefix(l, "libstdc++") || strings.HasPrefix(l, "libgcc") || strings.HasPrefix(l, "libwinpthread") {
					t.Errorf("%s needs %s", f, l)
				}
			}
		}
		p.Close()
	}
	for arch, cpu := range map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64} {
		for _, f := range []string{"linkd", "linkdevice"} {
			m, err := macho.Open(filepath.Join(dir, "darwin-"+arch, f))
			if err != nil {
				t.Errorf("darwin-%s/%s: %v", arch, f, err)
				continue
			}
			if m.Cpu != cpu || m.Type != macho.TypeExec {
				t.Errorf("darwin-%s/%s: cpu %v type %v", arch, f, m.Cpu, m.Type)
			}
			m.Close()
		}
	}
}
