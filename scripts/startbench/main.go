// Command startbench is `make bench-startup`: it measures Linkdesk's start-up and
// idle cost against a bare Fyne window with one label (./bare, same Fyne version
// and tags), in alternating pairs on the X display it is given (run it under
// `xvfb-run -a`), and prints the medians and their ratios:
//
//   - start: from exec to the first settled paint, i.e. the "ui: screen" log line
//     (the app's sign-in screen, the bare window's label) and then one capture of
//     the screen with ImageMagick's import completing;
//   - RSS: VmRSS 10 s after exec;
//   - idle CPU: utime+stime over 20 s of the kiosk showing its code (its 1 s
//     countdown running) against the bare window idle for the same 20 s.
//
// The app runs against a dev linkd started here, without a keyring (no D-Bus
// session), with a fresh HOME each run. It is a measuring tool, not a test: the
// numbers move with the machine's load, so read ratios from the same run.
// Goals (issue 10): each ratio ≤ 1.3.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	pairs := flag.Int("pairs", 5, "alternating pairs to run")
	flag.Parse()
	if os.Getenv("DISPLAY") == "" {
		fmt.Fprintln(os.Stderr, "startbench: no X display; run it as `xvfb-run -a go run ./scripts/startbench`")
		os.Exit(2)
	}
	if err := run(*pairs); err != nil {
		fmt.Fprintln(os.Stderr, "startbench:", err)
		os.Exit(1)
	}
}

// sample is one run's measurements.
type sample struct {
	start time.Duration
	rssKB int
	cpu   time.Duration // over the idle window; 0 when not measured
}

func run(pairs int) error {
	work, err := os.MkdirTemp("", "startbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := func(name string) string { return filepath.Join(work, name) }
	for _, b := range [][]string{
		{"build", "-tags", "migrated_fynedo", "-o", bin("linkdesk"), "."},
		{"build", "-tags", "migrated_fynedo", "-o", bin("bare"), "./scripts/startbench/bare"},
		{"build", "-o", bin("linkd"), "./cmd/linkd"},
	} {
		fmt.Fprintln(os.Stderr, "startbench: go", strings.Join(b, " "))
		cmd := exec.Command("go", b...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return err
		}
	}

	addr := "127.0.0.1:" + strconv.Itoa(20000+os.Getpid()%20000)
	issuer := "https://" + addr
	linkd := exec.Command(bin("linkd"), "serve", "--dev", "--data", filepath.Join(work, "data"), "--addr", addr)
	linkd.Stdout, linkd.Stderr = io.Discard, io.Discard
	if err := linkd.Start(); err != nil {
		return err
	}
	defer func() { _ = linkd.Process.Kill(); _ = linkd.Wait() }()
	if err := waitHTTP(issuer+"/.well-known/openid-configuration", time.Minute); err != nil {
		return err
	}
	ca := filepath.Join(work, "data", "ca.pem")
	appArgs := []string{"--issuer", issuer, "--ca-file", ca}
	kioskArgs := []string{"kiosk", "--issuer", issuer, "--ca-file", ca, "--device-name", "Bench display"}

	var app, bare, kiosk []sample
	for i := range pairs {
		runApp := func() error {
			s, err := measure(work, bin("linkdesk"), appArgs, "screen=signin", false)
			app = append(app, s)
			return err
		}
		runBare := func() error {
			s, err := measure(work, bin("bare"), nil, "screen=bare", true)
			bare = append(bare, s)
			return err
		}
		order := []func() error{runApp, runBare}
		if i%2 == 1 {
			order = []func() error{runBare, runApp}
		}
		for _, f := range order {
			if err := f(); err != nil {
				return err
			}
		}
		s, err := measureIdle(work, bin("linkdesk"), kioskArgs, "state=device.ShowingCode")
		if err != nil {
			return err
		}
		kiosk = append(kiosk, s)
		fmt.Fprintf(os.Stderr, "pair %d: app start %v RSS %d kB | bare start %v RSS %d kB CPU %v | kiosk CPU %v\n",
			i+1, app[i].start.Round(time.Millisecond), app[i].rssKB, bare[i].start.Round(time.Millisecond),
			bare[i].rssKB, bare[i].cpu, kiosk[i].cpu)
	}

	aStart, bStart := median(app, func(s sample) float64 { return s.start.Seconds() * 1000 }), median(bare, func(s sample) float64 { return s.start.Seconds() * 1000 })
	aRSS, bRSS := median(app, func(s sample) float64 { return float64(s.rssKB) / 1024 }), median(bare, func(s sample) float64 { return float64(s.rssKB) / 1024 })
	kCPU, bCPU := median(kiosk, func(s sample) float64 { return s.cpu.Seconds() * 1000 }), median(bare, func(s sample) float64 { return s.cpu.Seconds() * 1000 })
	fmt.Printf("medians over %d pairs (goal: each ratio <= 1.3)\n", pairs)
	fmt.Printf("start to settled paint: app %.0f ms, bare %.0f ms, ratio %.2f\n", aStart, bStart, aStart/bStart)
	fmt.Printf("RSS after 10 s:         app %.0f MB, bare %.0f MB, ratio %.2f\n", aRSS, bRSS, aRSS/bRSS)
	fmt.Printf("idle CPU over 20 s:     kiosk %.0f ms, bare %.0f ms, ratio %.2f\n", kCPU, bCPU, kCPU/max(bCPU, 1))
	return nil
}

// started is a process under measurement and the moment it was started.
type started struct {
	cmd   *exec.Cmd
	at    time.Time
	lines chan string
}

// launch starts bin with a fresh HOME and no D-Bus session (so no keyring).
func launch(work, bin string, args []string) (*started, error) {
	home, err := os.MkdirTemp(work, "home")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home+"/.config", "XDG_CACHE_HOME="+home+"/.cache",
		"XDG_DATA_HOME="+home+"/.local/share", "XDG_RUNTIME_DIR="+home, "DBUS_SESSION_BUS_ADDRESS=unix:path="+home+"/no-bus")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &started{cmd: cmd, lines: make(chan string, 64)}
	p.at = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is waiting for lines any more
			}
		}
		close(p.lines)
	}()
	return p, nil
}

// waitLine waits for a line containing want.
func (p *started) waitLine(want string, within time.Duration) error {
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return fmt.Errorf("%s exited before logging %q", p.cmd.Path, want)
			}
			if strings.Contains(l, want) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("%s did not log %q within %v", p.cmd.Path, want, within)
		}
	}
}

func (p *started) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// measure starts bin, times its first settled paint (log line signal, then a
// screen capture), reads its RSS 10 s after start and, when idle, its CPU over
// the next 20 s.
func measure(work, bin string, args []string, signal string, idle bool) (sample, error) {
	var s sample
	p, err := launch(work, bin, args)
	if err != nil {
		return s, err
	}
	defer p.stop()
	if err := p.waitLine(signal, time.Minute); err != nil {
		return s, err
	}
	if err := exec.Command("import", "-window", "root", "png:/dev/null").Run(); err != nil {
		return s, fmt.Errorf("screen capture (ImageMagick import): %w", err)
	}
	s.start = time.Since(p.at)
	time.Sleep(time.Until(p.at.Add(10 * time.Second)))
	if s.rssKB, err = rssKB(p.cmd.Process.Pid); err != nil {
		return s, err
	}
	if idle {
		s.cpu, err = cpuOver(p.cmd.Process.Pid, 20*time.Second)
	}
	return s, err
}

// measureIdle starts bin, waits for signal, and measures its CPU over 20 s.
func measureIdle(work, bin string, args []string, signal string) (sample, error) {
	var s sample
	p, err := launch(work, bin, args)
	if err != nil {
		return s, err
	}
	defer p.stop()
	if err := p.waitLine(signal, time.Minute); err != nil {
		return s, err
	}
	time.Sleep(time.Until(p.at.Add(10 * time.Second))) // past start-up, like the bare window
	s.cpu, err = cpuOver(p.cmd.Process.Pid, 20*time.Second)
	return s, err
}

func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuTicks is utime+stime of pid, in clock ticks (1/100 s on Linux).
func cpuTicks(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	u, err1 := strconv.Atoi(f[11])                           // field 14: utime
	k, err2 := strconv.Atoi(f[12])                           // field 15: stime
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	return u + k, nil
}

func cpuOver(pid int, d time.Duration) (time.Duration, error) {
	before, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := cpuTicks(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(after-before) * 10 * time.Millisecond, nil
}

func median(s []sample, f func(sample) float64) float64 {
	v := make([]float64, len(s))
	for i := range s {
		v[i] = f(s[i])
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func waitHTTP(url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	// Only "is it up yet": the app itself checks the certificate with the CA file.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("linkd did not answer at %s", url)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
