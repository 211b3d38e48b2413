package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDesktopPackage builds Linkdesk.tar.xz as make package does, unpacks it, and
// checks the desktop entry (Exec passes the link, Icon names the packaged icon,
// MimeType declares linkdesk://) and that the packaged binary runs.
func TestDesktopPackage(t *testing.T) {
	needTool(t, "tar")
	needTool(t, "xz")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	version, err := projectVersion(root)
	if err != nil {
		t.Fatal(err)
	}
	tarball, err := desktopPackage(context.Background(), root, filepath.Join(sharedDir, "desktop"), version)
	if err != nil {
		t.Fatal(err)
	}
	x := t.TempDir()
	output(t, "tar", "-xJf", tarball, "-C", x)
	entries, _ := filepath.Glob(filepath.Join(x, "*", "usr", "local", "share", "applications", "*.desktop"))
	if len(entries) != 1 {
		t.Fatalf("want one desktop entry under usr/local/share/applications, found %v", entries)
	}
	if got := filepath.Base(entries[0]); got != "com.linkdesk.app.desktop" {
		t.Errorf("desktop entry %s, want com.linkdesk.app.desktop (the app id, as register-scheme names it)", got)
	}
	prefix := filepath.Dir(filepath.Dir(filepath.Dir(entries[0]))) // …/usr/local
	b, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	entry := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			entry[k] = v
		}
	}
	for k, want := range map[string]string{
		"Exec": "linkdesk %u", "Icon": "com.linkdesk.app", "Name": "Linkdesk", "Type": "Application",
		"MimeType": schemeMime + ";",
	} {
		if entry[k] != want {
			t.Errorf("%s=%q, want %q\n%s", k, entry[k], want, b)
		}
	}
	if _, err := os.Stat(filepath.Join(prefix, "share", "pixmaps", entry["Icon"]+".png")); err != nil {
		t.Errorf("the entry's icon is not in the package: %v", err)
	}
	exe := filepath.Join(prefix, "bin", "linkdesk")
	fi, err := os.Stat(exe)
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("usr/local/bin/linkdesk: %v (mode %v)", err, fi.Mode())
	}
	// It runs: its libraries resolve and it answers --help (no display needed).
	out, err := exec.Command(exe, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Usage: linkdesk") {
		t.Errorf("packaged linkdesk --help: %v\n%s", err, out)
	}
	runsUnderXvfb(t, exe)
}

// runsUnderXvfb starts the packaged linkdesk on a private Xvfb display and waits for
// the log line the app writes once it has shown its first screen ("ui: screen …").
func runsUnderXvfb(t *testing.T, exe string) {
	if _, err := exec.LookPath("Xvfb"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("Xvfb is missing (scripts/deps.sh installs it)")
		}
		t.Log("Xvfb is missing: the packaged app was not started on a display")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	xvfb := exec.CommandContext(ctx, "Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	xvfb.ExtraFiles = []*os.File{w}
	if err := xvfb.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = xvfb.Process.Kill(); _ = xvfb.Wait() }()
	w.Close()
	display, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("Xvfb did not say its display: %v", err)
	}
	home := t.TempDir()
	app := exec.CommandContext(ctx, exe)
	app.Env = append(os.Environ(), "DISPLAY=:"+strings.TrimSpace(display), "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"DBUS_SESSION_BUS_ADDRESS=disabled:") // no keyring: the app must still show a screen
	logs, err := app.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	app.Stdout = app.Stderr
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Process.Kill(); _ = app.Wait() }()
	var seen []string
	sc := bufio.NewScanner(logs)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "ui: screen") {
			t.Logf("packaged linkdesk under Xvfb: %s", sc.Text())
			return
		}
	}
	t.Fatalf("the packaged linkdesk showed no screen under Xvfb (%v); its log:\n%s", ctx.Err(), strings.Join(seen, "\n"))
}

func TestAddSchemeMime(t *testing.T) {
	const want = "MimeType=x-scheme-handler/linkdesk;"
	for _, c := range []struct{ name, in, out string }{
		{"fyne's entry: before the blank line ending the group",
			"[Desktop Entry]\nType=Application\nExec=linkdesk %u\n\n[X-Fyne Source]\nRepo=x\n",
			"[Desktop Entry]\nType=Application\nExec=linkdesk %u\n" + want + "\n\n[X-Fyne Source]\nRepo=x\n"},
		{"only group", "[Desktop Entry]\nName=Linkdesk\n", "[Desktop Entry]\nName=Linkdesk\n" + want + "\n"},
		{"added to a MimeType line", "[Desktop Entry]\nMimeType=text/plain\n",
			"[Desktop Entry]\nMimeType=text/plain;x-scheme-handler/linkdesk;\n"},
		{"already there", "[Desktop Entry]\n" + want + "\n", "[Desktop Entry]\n" + want + "\n"},
		{"a MimeType in another group does not count", "[Other]\nMimeType=a/b;\n[Desktop Entry]\nName=L\n",
			"[Other]\nMimeType=a/b;\n[Desktop Entry]\nName=L\n" + want + "\n"},
	} {
		got, err := addSchemeMime([]byte(c.in))
		if err != nil || string(got) != c.out {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.out)
		}
	}
	if _, err := addSchemeMime([]byte("Name=x\n")); err == nil {
		t.Error("an entry without [Desktop Entry] was accepted")
	}
}
