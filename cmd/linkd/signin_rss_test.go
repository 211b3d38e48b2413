package main

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/links"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

var reCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// peakRSSOf is process pid's peak resident set (VmHWM), in bytes.
func peakRSSOf(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM")
	return 0
}

// Sixty wrong passwords posted at once to the real linkd process from one address:
// exactly the limit's number are checked, and the process's peak memory stays under
// 512 MiB (each argon2id check takes 64 MiB).
func TestSignInBurstMemoryOfLinkd(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := linkd.AddUser(context.Background(), db, linkd.NewUser{Username: "victim", Password: "right"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	p := startLinkd(t, dir)
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()

	const n = 60
	clients := make([]*http.Client, n)
	tokens := make([]string, n)
	for i := range clients {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Transport: p.Client.Transport, Jar: jar}
		resp, err := clients[i].Get(p.URL + "/signin")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := reCSRF.FindSubmatch(b)
		if m == nil {
			t.Fatalf("no CSRF token: %.300s", b)
		}
		tokens[i] = html.UnescapeString(string(m[1]))
	}
	start := peakRSSOf(t, pid)
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			resp, err := clients[i].PostForm(p.URL+"/signin", url.Values{"csrf_token": {tokens[i]},
				"username": {"victim"}, "password": {"wrong"}})
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(gate)
	wg.Wait()
	peak := peakRSSOf(t, pid)
	t.Logf("answers %v; linkd's peak RSS %d MiB (%d MiB before the burst)", statuses, peak>>20, start>>20)
	if got := statuses[http.StatusUnauthorized]; got != links.SignInFreeTries {
		t.Errorf("%d of %d wrong passwords checked, want exactly %d", got, n, links.SignInFreeTries)
	}
	switch {
	case raceDetector:
		// The race detector's shadow memory multiplies every 64 MiB hash; the bound is
		// for linkd as shipped (go test without -race runs it).
		t.Logf("race detector on: peak RSS not held to 512 MiB")
	case peak > 512<<20:
		t.Errorf("linkd's peak RSS %d MiB, want under 512 MiB", peak>>20)
	}
}
