package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// fyneTool is the fyne command at a fixed version (fyne.io/tools), run with go run so
// the project's go.mod does not carry the tool's dependencies.
const fyneTool = "fyne.io/tools/cmd/fyne@v1.7.4"

// schemeMime is the MIME type that makes a desktop entry the handler of linkdesk://
// links (ui/desktop.SchemeMime; this tool does not import the app's packages).
const schemeMime = "x-scheme-handler/linkdesk"

// desktopTarball is the name `fyne package` gives the Linux package: FyneApp.toml's Name.
const desktopTarball = "Linkdesk.tar.xz"

// desktopPackage builds linkdesk for linux/amd64 (cgo, as Fyne needs), lays it out
// with `fyne package` from FyneApp.toml (binary under usr/local/bin, .desktop entry,
// icon, and the Makefile that installs them), adds the linkdesk:// scheme to the entry,
// and writes out/Linkdesk.tar.xz. It returns the tarball's path.
func desktopPackage(ctx context.Context, root, out, version string) (string, error) {
	work, err := os.MkdirTemp("", "linkdesk-desktop-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	exe := filepath.Join(work, "bin", "linkdesk")
	if err := goBuild(ctx, root, exe, ".", "linux", "amd64", "CGO_ENABLED=1"); err != nil {
		return "", err
	}
	// fyne package reads FyneApp.toml (and the icon it names) from its source directory
	// and writes the tarball there: a copy of the two (and a stub main) keeps the repository clean and
	// lets two runs (make package, the test) work at once.
	src := filepath.Join(work, "src")
	for _, f := range []string{"FyneApp.toml", filepath.Join("assets", "icon.png")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			return "", err
		}
	}
	// fyne package insists on Go code in its source directory even when given --exe.
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		return "", err
	}
	appVersion, _, _ := strings.Cut(version, "+") // fyne wants x.y.z
	appVersion, _, _ = strings.Cut(appVersion, "-")
	if err := runIn(ctx, src, "go", "run", fyneTool, "package", "--os", "linux", "--release",
		"--exe", exe, "--src", src, "--app-version", appVersion); err != nil {
		return "", err
	}
	// Unpack, declare the scheme in the entry, pack again with the same layout.
	tree := filepath.Join(work, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return "", err
	}
	if err := runIn(ctx, tree, "tar", "-xJf", filepath.Join(src, desktopTarball)); err != nil {
		return "", err
	}
	entries, err := filepath.Glob(filepath.Join(tree, "*", "usr", "*", "share", "applications", "*.desktop"))
	if err != nil || len(entries) != 1 {
		return "", fmt.Errorf("fyne package: want one .desktop entry in %s, found %v (%v)", desktopTarball, entries, err)
	}
	entry, err := os.ReadFile(entries[0])
	if err != nil {
		return "", err
	}
	if entry, err = addSchemeMime(entry); err != nil {
		return "", err
	}
	if err := os.WriteFile(entries[0], entry, 0o644); err != nil {
		return "", err
	}
	top, err := os.ReadDir(tree)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	tarball := filepath.Join(out, desktopTarball)
	args := []string{"-cJf", tarball, "--owner=0", "--group=0", "-C", tree}
	for _, e := range top {
		args = append(args, e.Name())
	}
	// xz's fast preset on every core: the binary is most of it and compresses about
	// as well either way.
	if err := runIn(ctx, tree, "env", append([]string{"XZ_OPT=-2 -T0", "tar"}, args...)...); err != nil {
		return "", err
	}
	return tarball, nil
}

// addSchemeMime declares linkdesk:// links in a desktop entry: it adds schemeMime to
// the entry's MimeType line, or adds the line to the [Desktop Entry] group. `fyne
// package` has no setting for a URL scheme (its [CanOpen] MimeTypes also puts %F on
// Exec, which clashes with the %u that passes the link), so the entry is patched here.
func addSchemeMime(entry []byte) ([]byte, error) {
	lines := strings.Split(string(entry), "\n")
	group, inEntry, insertAt := false, false, -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			if inEntry && insertAt < 0 {
				insertAt = i
			}
			inEntry = t == "[Desktop Entry]"
			group = group || inEntry
			continue
		}
		if !inEntry {
			continue
		}
		if v, ok := strings.CutPrefix(t, "MimeType="); ok {
			for _, m := range strings.Split(v, ";") {
				if m == schemeMime {
					return entry, nil
				}
			}
			if v != "" && !strings.HasSuffix(v, ";") {
				v += ";"
			}
			lines[i] = "MimeType=" + v + schemeMime + ";"
			return []byte(strings.Join(lines, "\n")), nil
		}
	}
	if !group {
		return nil, errors.New("desktop entry has no [Desktop Entry] group")
	}
	if insertAt < 0 {
		insertAt = len(lines)
	}
	// Before the blank lines that end the group.
	for insertAt > 0 && strings.TrimSpace(lines[insertAt-1]) == "" {
		insertAt--
	}
	lines = append(lines[:insertAt], append([]string{"MimeType=" + schemeMime + ";"}, lines[insertAt:]...)...)
	return []byte(strings.Join(lines, "\n")), nil
}

// runIn runs name with args in dir; its output goes to the error when it fails.
func runIn(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.Bytes())
	}
	return nil
}
