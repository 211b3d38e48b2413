package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	debOnce sync.Once
	debPath string
	debErr  error
)

// builtDeb builds the .deb once for all tests of this package, as make package does.
func builtDeb(t *testing.T) string {
	t.Helper()
	debOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			debErr = err
			return
		}
		version, err := projectVersion(root)
		if err != nil {
			debErr = err
			return
		}
		bin := filepath.Join(sharedDir, "linux-amd64")
		if debErr = buildServerBinaries(context.Background(), root, bin, "linux", "amd64"); debErr != nil {
			return
		}
		debPath, debErr = writeDeb(root, bin, version, sharedDir)
	})
	if debErr != nil {
		t.Fatalf("building the .deb: %v", debErr)
	}
	return debPath
}

// sharedDir holds what the tests build once (the .deb, the desktop package).
var sharedDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "linkdesk-package-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (Debian has it): %v", name, err)
	}
}

// TestDebContents reads the built package with dpkg-deb: its control fields, its
// files with their modes and owners, the conffile, and that the binaries are static
// (which is why the package depends on nothing).
func TestDebContents(t *testing.T) {
	needTool(t, "dpkg-deb")
	deb := builtDeb(t)
	root, _ := repoRoot()
	version, _ := projectVersion(root)

	control := output(t, "dpkg-deb", "-f", deb)
	fields := map[string]string{}
	for _, l := range strings.Split(control, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, " ") {
			fields[k] = v
		}
	}
	for k, want := range map[string]string{
		"Package": "linkd", "Architecture": "amd64", "Version": version, "Maintainer": debMaintainer,
		"Section": "net", "Priority": "optional", "Recommends": "systemd (>= 240)",
	} {
		if fields[k] != want {
			t.Errorf("control field %s = %q, want %q\n%s", k, fields[k], want, control)
		}
	}
	if d, ok := fields["Depends"]; ok {
		t.Errorf("Depends: %q; the binaries are static and need nothing", d)
	}
	if c := output(t, "dpkg-deb", "-I", deb, "conffiles"); strings.TrimSpace(c) != defaultsPath {
		t.Errorf("conffiles = %q, want %s (so upgrades keep its edits)", c, defaultsPath)
	}

	// -rwxr-xr-x root/root 1234 2026-01-01 00:00 ./usr/bin/linkd
	list := output(t, "dpkg-deb", "-c", deb)
	modes := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", f[len(f)-1], f[1])
		}
		modes[strings.TrimPrefix(f[5], ".")] = f[0]
	}
	for path, mode := range map[string]string{
		"/usr/bin/linkd": "-rwxr-xr-x", "/usr/bin/linkdevice": "-rwxr-xr-x",
		unitPath: "-rw-r--r--", defaultsPath: "-rw-r--r--",
		docDir + "/README.md": "-rw-r--r--", docDir + "/packaging.md": "-rw-r--r--", docDir + "/replicas.md": "-rw-r--r--",
	} {
		if modes[path] != mode {
			t.Errorf("%s: mode %q, want %q\n%s", path, modes[path], mode, list)
		}
	}

	x := t.TempDir()
	output(t, "dpkg-deb", "-x", deb, x)
	for _, bin := range []string{"usr/bin/linkd", "usr/bin/linkdevice"} {
		f, err := elf.Open(filepath.Join(x, bin))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked; the package declares no Depends", bin)
			}
		}
		f.Close()
	}
	unit, _ := os.ReadFile(filepath.Join(x, unitPath))
	want, _ := os.ReadFile(filepath.Join(root, "packaging", "linkd.service"))
	if len(unit) == 0 || !bytes.Equal(unit, want) {
		t.Errorf("%s in the package differs from packaging/linkd.service", unitPath)
	}
}

// TestUnitHardening keeps the unit's promises: a throw-away user, its own state
// directory, a read-only system, no privileges, and ExecStart on the state directory.
func TestUnitHardening(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, filepath.Join(root, "packaging", "linkd.service"))
	for k, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "linkd", "ProtectSystem": "strict", "ProtectHome": "yes",
		"NoNewPrivileges": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "EnvironmentFile": "-" + defaultsPath,
		"ExecStart": "/usr/bin/linkd serve --data ${STATE_DIRECTORY} $LINKD_FLAGS",
	} {
		if got, ok := u[k]; !ok || got != want {
			t.Errorf("%s=%q (set: %v), want %q", k, got, ok, want)
		}
	}
}

// parseUnit reads the [Service] settings of a unit file (the last of each name).
func parseUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			section = l
			continue
		}
		if section != "[Service]" || l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestDebInstallServesDiscovery installs the package with dpkg -i, starts linkd the
// way the unit does (with systemctl when systemd runs; otherwise the unit's ExecStart
// line with its environment file, as the unprivileged user nobody on a state
// directory of the test's), reaches discovery over HTTPS with the CA linkd made,
// stops it, and removes and purges the package.
func TestDebInstallServesDiscovery(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing a .deb needs root (dpkg -i)")
	}
	needTool(t, "dpkg")
	if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", debName).Output(); strings.Contains(string(out), "ok installed") {
		t.Skipf("package %s is already installed here; not replacing it", debName)
	}
	deb := builtDeb(t)
	output(t, "dpkg", "-i", deb)
	purged := false
	t.Cleanup(func() {
		if !purged {
			exec.Command("systemctl", "stop", "linkd").Run()
			exec.Command("dpkg", "--purge", debName).Run()
		}
	})
	if out := output(t, "/usr/bin/linkd", "serve", "--help"); !strings.Contains(out, "--data") {
		t.Errorf("installed linkd serve --help has no --data:\n%s", out)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
		}
	}

	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	var caFile string
	if systemdRuns() {
		caFile = startWithSystemd(t, addr)
	} else {
		caFile = startLikeTheUnit(t, addr)
	}
	reachDiscovery(t, addr, caFile)

	// Remove keeps the edited settings file (a conffile); purge removes it.
	output(t, "dpkg", "-r", debName)
	for _, gone := range []string{"/usr/bin/linkd", "/usr/bin/linkdevice", unitPath} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after dpkg -r, %s is still there (%v)", gone, err)
		}
	}
	if _, err := os.Stat(defaultsPath); err != nil {
		t.Errorf("dpkg -r removed the conffile %s: %v", defaultsPath, err)
	}
	output(t, "dpkg", "--purge", debName)
	purged = true
	if _, err := os.Stat(defaultsPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after dpkg --purge, %s is still there (%v)", defaultsPath, err)
	}
}

// systemdRuns says whether systemd is the running init (not in most CI containers).
func systemdRuns() bool {
	out, _ := exec.Command("systemctl", "is-system-running").Output()
	s := strings.TrimSpace(string(out))
	return s == "running" || s == "degraded"
}

// startWithSystemd starts linkd.service with a drop-in that sets the address, and
// returns the CA file linkd made in its state directory.
func startWithSystemd(t *testing.T, addr string) string {
	dropDir := "/run/systemd/system/linkd.service.d"
	if err := os.MkdirAll(dropDir, 0o755); err != nil {
		t.Fatal(err)
	}
	drop := filepath.Join(dropDir, "test.conf")
	if err := os.WriteFile(drop, []byte("[Service]\nEnvironment=\"LINKD_FLAGS=--addr "+addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("systemctl", "stop", "linkd").Run()
		os.Remove(drop)
		exec.Command("systemctl", "daemon-reload").Run()
	})
	output(t, "systemctl", "daemon-reload")
	// Follow the unit's log from now on: linkd prints the CA's path, then the issuer.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	journal := exec.CommandContext(ctx, "journalctl", "-u", "linkd", "-f", "-n", "0", "-o", "cat", "--no-pager")
	logs, err := journal.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := journal.Start(); err != nil {
		t.Fatal(err)
	}
	defer journal.Wait()
	output(t, "systemctl", "start", "linkd")
	caFile := ""
	s := bufio.NewScanner(logs)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CA certificate: "); ok {
			caFile = strings.TrimSpace(v)
		}
		if strings.HasPrefix(s.Text(), "issuer: ") {
			return caFile
		}
	}
	out, _ := exec.Command("systemctl", "status", "linkd").CombinedOutput()
	t.Fatalf("linkd.service did not say it serves within 60 s:\n%s", out)
	return ""
}

// startLikeTheUnit runs the installed unit's ExecStart line as systemd would: the
// environment from its EnvironmentFile (here a copy with the test's address added,
// as an operator would edit it), STATE_DIRECTORY set to a fresh directory owned by the
// unprivileged user nobody, and that user (DynamicUser's stand-in). It returns the CA
// file linkd printed and stops linkd with SIGTERM when the test ends, checking that
// it exits cleanly.
func startLikeTheUnit(t *testing.T, addr string) string {
	u := parseUnit(t, unitPath)
	envFile := strings.TrimPrefix(u["EnvironmentFile"], "-")
	settings, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("the unit's environment file: %v", err)
	}
	env := parseEnvFile(string(settings) + "\nLINKD_FLAGS=--addr " + addr + "\n")

	base, err := os.MkdirTemp("", "linkd-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	state := filepath.Join(base, u["StateDirectory"])
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	if err := os.Chown(state, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	env["STATE_DIRECTORY"] = state
	argv := expandExecStart(u["ExecStart"], env)
	if want := []string{"/usr/bin/linkd", "serve", "--data", state, "--addr", addr}; !slices.Equal(argv, want) {
		t.Fatalf("ExecStart expands to %q, want %q", argv, want)
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", argv, err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		go func() {
			for range lines { // drain, so Wait can finish
			}
		}()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("linkd did not exit cleanly on SIGTERM: %v\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("linkd did not stop within 30 s of SIGTERM\n%s", logs.String())
		}
	})

	var caFile string
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("linkd exited before serving:\n%s", logs.String())
			}
			if v, ok := strings.CutPrefix(l, "CA certificate: "); ok {
				caFile = strings.TrimSpace(v)
			}
			if strings.HasPrefix(l, "issuer: ") {
				if !strings.HasPrefix(caFile, state+string(filepath.Separator)) {
					t.Fatalf("linkd's CA %q is not in the state directory %s", caFile, state)
				}
				return caFile
			}
		case <-deadline:
			t.Fatalf("linkd did not say it serves within 60 s\n%s", logs.String())
		}
	}
}

// parseEnvFile reads systemd's EnvironmentFile format: NAME=value lines, # comments,
// values optionally in double or single quotes; a later line wins.
func parseEnvFile(s string) map[string]string {
	env := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[strings.TrimSpace(k)] = v
	}
	return env
}

// expandExecStart expands a unit's command line as systemd does for the forms the
// unit uses: ${NAME} stands for the value as (part of) one word, a word that is
// exactly $NAME for the value split on white space (no words when empty).
func expandExecStart(line string, env map[string]string) []string {
	var argv []string
	braced := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	for _, w := range strings.Fields(line) {
		if name, ok := strings.CutPrefix(w, "$"); ok && !strings.HasPrefix(name, "{") {
			argv = append(argv, strings.Fields(env[name])...)
			continue
		}
		argv = append(argv, braced.ReplaceAllStringFunc(w, func(m string) string {
			return env[braced.FindStringSubmatch(m)[1]]
		}))
	}
	return argv
}

func TestExpandExecStart(t *testing.T) {
	env := map[string]string{"STATE_DIRECTORY": "/var/lib/linkd", "LINKD_FLAGS": " --addr  0.0.0.0:8443 --dev"}
	got := expandExecStart("/usr/bin/linkd serve --data ${STATE_DIRECTORY} $LINKD_FLAGS", env)
	if want := []string{"/usr/bin/linkd", "serve", "--data", "/var/lib/linkd", "--addr", "0.0.0.0:8443", "--dev"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := expandExecStart("/usr/bin/linkd $LINKD_FLAGS", map[string]string{}); !slices.Equal(got, []string{"/usr/bin/linkd"}) {
		t.Errorf("empty $LINKD_FLAGS: got %q", got)
	}
}

// reachDiscovery fetches the OpenID discovery document from linkd at addr, trusting
// only caFile, and checks it names the issuer and the device endpoint.
func reachDiscovery(t *testing.T, addr, caFile string) {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("linkd's CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("no certificate in %s", caFile)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + addr + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %s\n%s", resp.Status, body)
	}
	var doc struct {
		Issuer     string `json:"issuer"`
		DeviceAuth string `json:"device_authorization_endpoint"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("discovery: %v\n%s", err, body)
	}
	if doc.Issuer != "https://"+addr || doc.DeviceAuth == "" {
		t.Errorf("discovery: issuer %q (want https://%s), device endpoint %q", doc.Issuer, addr, doc.DeviceAuth)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// output runs a command and returns its standard output, failing the test on error.
func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}
