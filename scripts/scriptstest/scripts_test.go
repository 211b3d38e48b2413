// Package scriptstest tests the newcomer's scripts as a person runs them: `make run`
// must stop at once, with one plain sentence, where it cannot work; and
// scripts/dev-ca.sh must make a real browser trust linkd's dev certificate, and stop
// trusting it, only in the NSS databases it names.
package scriptstest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// repoRoot is the directory holding go.mod, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod two levels above the test: %v", err)
	}
	return root
}

// need skips the test when a program from scripts/deps.sh's list is missing, except in
// CI, where it must be there.
func need(t *testing.T, prog, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s is not installed (Debian package %s; scripts/deps.sh installs it)", prog, pkg)
		}
		t.Fatalf("CI is set but %s (Debian package %s) is missing", prog, pkg)
	}
}

// environ is this process's environment without the named variables, plus extra.
func environ(drop []string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			keep = keep && k != d
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs name args in dir with env and a deadline; past the deadline it kills the
// command's whole process group (make, the script and any build under it) and fails.
func runCmd(t *testing.T, deadline time.Duration, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not end within %v (stdout %q, stderr %q)", name, args, deadline, out.String(), errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return result{out.String(), errb.String(), code}
}

// atOnce bounds how long `make run` may take to refuse: building takes minutes, so a
// script that reached the build fails this deadline.
const atOnce = 20 * time.Second

var displayVars = []string{"DISPLAY", "WAYLAND_DISPLAY", "LINKD_ADDR", "LINKDESK_RUN_CHECK_ONLY"}

// TestMakeRunStopsAtOnce runs `make run` where it cannot work and checks that it ends
// at once, non-zero, with the sentence saying what is needed and never building.
// makeLine matches a line make itself prints, at any depth of make within make.
var makeLine = regexp.MustCompile(`^make(\[[0-9]+\])?: `)

func TestMakeRunStopsAtOnce(t *testing.T) {
	need(t, "make", "make")
	root := repoRoot(t)
	cases := []struct {
		name  string
		env   []string
		needs string // a program the case needs
		want  []string
	}{
		{"no display", nil, "",
			[]string{"there is no display here ($DISPLAY and $WAYLAND_DISPLAY are unset)", "`xvfb-run -a make run`", "Debian's xvfb package"}},
		{"Wayland without XWayland", []string{"WAYLAND_DISPLAY=wayland-0"}, "",
			[]string{"no XWayland", "`xvfb-run -a make run`"}},
		{"display that does not answer", []string{"DISPLAY=:54321"}, "xdpyinfo",
			[]string{"cannot open the display $DISPLAY=:54321", "`xvfb-run -a make run`"}},
		{"wildcard LINKD_ADDR", []string{"LINKD_ADDR=0.0.0.0:8443"}, "",
			[]string{"LINKD_ADDR=0.0.0.0:8443 is a wildcard", "LAN address", ":8443 make run"}},
		{"LINKD_ADDR without a port", []string{"LINKD_ADDR=192.168.1.20"}, "",
			[]string{"LINKD_ADDR=192.168.1.20:8443 make run"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.needs != "" {
				need(t, c.needs, "x11-utils")
			}
			r := runCmd(t, atOnce, root, environ(displayVars, c.env...), "make", "run")
			if r.code == 0 {
				t.Fatalf("make run exited 0; stdout %q stderr %q", r.stdout, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			var ours []string // make's own "make: *** … Error 1" line aside ("make[1]: " under make test)
			for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				if !makeLine.MatchString(l) {
					ours = append(ours, l)
				}
			}
			if len(ours) != 1 || !strings.HasPrefix(ours[0], "run: ") {
				t.Errorf("want one line from run.sh on stderr, got %q", ours)
			}
			if strings.Contains(r.stdout, "building") || strings.Contains(r.stdout, "deps") {
				t.Errorf("make run went on to build: %q", r.stdout)
			}
		})
	}
}

// TestXvfbRunPassesTheDisplayCheck checks the advice the sentence gives: under
// `xvfb-run -a make run` the checks pass (LINKDESK_RUN_CHECK_ONLY stops the script
// right after them, before building).
func TestXvfbRunPassesTheDisplayCheck(t *testing.T) {
	need(t, "make", "make")
	need(t, "xvfb-run", "xvfb")
	r := runCmd(t, time.Minute, repoRoot(t), environ(displayVars, "LINKDESK_RUN_CHECK_ONLY=1"),
		"xvfb-run", "-a", "make", "run")
	if r.code != 0 || !strings.Contains(r.stdout, "run: checks passed") {
		t.Fatalf("xvfb-run -a make run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

const nick = "Linkdesk dev CA (.run/data)"

// TestDevCATrustAndUntrust builds linkd, serves it in dev mode on 127.0.0.1, and checks
// with certutil and headless Chromium, in a temporary HOME, that its page is refused
// before `dev-ca.sh trust`, loads after it, and is refused again after untrust.
func TestDevCATrustAndUntrust(t *testing.T) {
	need(t, "certutil", "libnss3-tools")
	root := repoRoot(t)
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	chromiumDB := filepath.Join(home, ".pki", "nssdb")
	firefoxDB := filepath.Join(home, ".mozilla", "firefox", "abcd1234.default-release")
	for _, d := range []string{chromiumDB, firefoxDB} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("certutil", "-N", "-d", "sql:"+d, "--empty-password").CombinedOutput(); err != nil {
			t.Fatalf("certutil -N %s: %v\n%s", d, err, out)
		}
	}
	env := environ([]string{"HOME"}, "HOME="+home)
	devCA := filepath.Join(root, "scripts", "dev-ca.sh")
	script := func(args ...string) result { return runCmd(t, time.Minute, root, env, devCA, args...) }

	// Before linkd has run there is no CA: trust says how to get one and changes nothing.
	data := filepath.Join(tmp, "data")
	ca := filepath.Join(data, "ca.pem")
	if r := script("trust", ca); r.code == 0 || !strings.Contains(r.stderr, "run make run once") {
		t.Fatalf("trust without a CA: exit %d, stderr %q", r.code, r.stderr)
	}

	issuer := startLinkd(t, root, data)
	page := issuer + "/link"
	if r := script("status", ca); r.code == 0 {
		t.Fatalf("status before trust exits 0: %q", r.stdout)
	}
	browse := chromiumLoader(t, home)
	browse(page, "ERR_CERT_AUTHORITY_INVALID")

	r := script("trust", ca)
	if r.code != 0 {
		t.Fatalf("trust: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, d := range []string{chromiumDB, firefoxDB} {
		if flags := trustFlags(t, d); flags != "C,," {
			t.Errorf("%s: %q has trust flags %q, want C,, (a CA for TLS servers)", d, nick, flags)
		}
	}
	if r := script("status", ca); r.code != 0 {
		t.Errorf("status after trust: exit %d: %q", r.code, r.stdout)
	}
	// Trusting again (say after .run/data was remade) leaves one certificate, not two.
	if r := script("trust", ca); r.code != 0 {
		t.Fatalf("second trust: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := certutil(t, "-L", "-d", "sql:"+chromiumDB, "-n", nick, "-a"); strings.Count(out, "BEGIN CERTIFICATE") != 1 {
		t.Errorf("after a second trust the database holds %d certificates named %q", strings.Count(out, "BEGIN CERTIFICATE"), nick)
	}
	browse(page, "")

	if r := script("untrust"); r.code != 0 {
		t.Fatalf("untrust: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, d := range []string{chromiumDB, firefoxDB} {
		if out := certutil(t, "-L", "-d", "sql:"+d); strings.Contains(out, nick) {
			t.Errorf("%s still lists %q after untrust:\n%s", d, nick, out)
		}
	}
	if r := script("status", ca); r.code == 0 {
		t.Errorf("status after untrust exits 0: %q", r.stdout)
	}
	browse(page, "ERR_CERT_AUTHORITY_INVALID")
}

func certutil(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("certutil", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("certutil %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// trustFlags is the trust column certutil -L shows for our nickname in the database
// in dir, or "" when it is not there.
func trustFlags(t *testing.T, dir string) string {
	for _, l := range strings.Split(certutil(t, "-L", "-d", "sql:"+dir), "\n") {
		if rest, ok := strings.CutPrefix(l, nick); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// startLinkd builds linkd and serves it in dev mode on a free 127.0.0.1 port with its
// data (and dev CA) in data, returning the issuer once linkd has printed it (it
// listens before printing). linkd with --addr 127.0.0.1:0 would name port 0 in its
// issuer, so the port is picked here.
func startLinkd(t *testing.T, root, data string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "linkd")
	runCmd(t, 10*time.Minute, root, os.Environ(), "go", "build", "-o", bin, "./cmd/linkd")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("go build produced no linkd: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	cmd := exec.Command(bin, "serve", "--dev", "--data", data, "--addr", addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	issuerc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "issuer: "); ok {
				issuerc <- v
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case issuer := <-issuerc:
		if want := "https://" + addr; issuer != want {
			t.Fatalf("linkd's issuer is %q, want %q", issuer, want)
		}
		return issuer
	case <-exited:
		t.Fatalf("linkd exited before printing its issuer:\n%s", logs.String())
	case <-time.After(time.Minute):
		t.Fatalf("linkd printed no issuer within a minute:\n%s", logs.String())
	}
	return ""
}

// chromiumLoader returns a function that opens url in a fresh headless Chromium whose
// HOME is home (Chromium on Linux reads $HOME/.pki/nssdb), without
// --ignore-certificate-errors, and checks that the load fails with wantErr, or, when
// wantErr is "", succeeds on a Linkdesk page.
func chromiumLoader(t *testing.T, home string) func(url, wantErr string) {
	t.Helper()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "" {
			t.Logf("%s not installed (Debian package chromium): checked with certutil only", chromium)
			return func(string, string) {}
		}
		t.Fatalf("CI is set but %s is missing", chromium)
	}
	return func(url, wantErr string) {
		t.Helper()
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(chromium),
			chromedp.Flag("headless", true),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
			chromedp.Env("HOME="+home),
		)
		defer cancelAlloc()
		ctx, cancel := chromedp.NewContext(actx)
		defer cancel()
		ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
		defer cancelT()
		var title string
		_, err := chromedp.Run(ctx, chromedp.Navigate(url))
		if err == nil {
			title, err = chromedp.Run(ctx, chromedp.Title())
		}
		switch {
		case wantErr != "" && err == nil:
			t.Errorf("Chromium loaded %s (title %q); want %s", url, title, wantErr)
		case wantErr != "" && !strings.Contains(err.Error(), wantErr):
			t.Errorf("Chromium loading %s: %v; want %s", url, err, wantErr)
		case wantErr == "" && err != nil:
			t.Errorf("Chromium loading %s: %v", url, err)
		case wantErr == "" && !strings.Contains(title, "Linkdesk"):
			t.Errorf("Chromium loaded %s with title %q, not a Linkdesk page", url, title)
		}
	}
}
