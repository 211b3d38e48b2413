package linkd_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/links"
)

// peakRSS resets (reset true) or reads this process's peak resident set (VmHWM), in
// bytes. linkdtest runs linkd in the test process, so this is linkd's peak.
func peakRSS(t *testing.T, reset bool) int64 {
	t.Helper()
	if reset {
		// "5" resets VmHWM to the current resident set (proc(5), clear_refs).
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			t.Skipf("cannot reset the peak RSS: %v", err)
		}
	}
	f, err := os.Open("/proc/self/status")
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
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}

// burst posts the sign-in form n times at once from one address (each from its own
// browser, all forms fetched first) and counts the answers by status.
func burst(t *testing.T, in *linkdtest.Instance, n int, username, password string) map[int]int {
	t.Helper()
	phones := make([]*phone, n)
	pages := make([]string, n)
	for i := range phones {
		phones[i] = newPhone(t, in)
		_, pages[i] = phones[i].get("/signin")
	}
	statuses := make(map[int]int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, _ := phones[i].post(pages[i], "/signin", url.Values{"username": {username}, "password": {password}})
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}

// Sixty wrong passwords posted at once from one address: only as many are checked
// (answered "don't match", 401) as the limit allows, the rest are refused before any
// hashing, and linkd's memory stays bounded.
func TestSignInBurstChecksOnlyTheLimit(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "victim", "right")
	before := peakRSS(t, true)
	statuses := burst(t, in, 60, "victim", "wrong")
	peak := peakRSS(t, false)
	t.Logf("statuses %v; peak RSS %d MiB (%d MiB at start)", statuses, peak>>20, before>>20)
	if got, want := statuses[http.StatusUnauthorized], links.SignInFreeTries; got != want {
		t.Errorf("%d of 60 wrong passwords were checked, want exactly %d", got, want)
	}
	if statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests]+statuses[http.StatusServiceUnavailable] != 60 {
		t.Errorf("answers %v, want only 401, 429 and 503", statuses)
	}
	// The growth over the start is linkd's (the race detector's shadow memory included).
	if peak-before > memoryBound {
		t.Errorf("peak RSS grew by %d MiB, want under %d MiB", (peak-before)>>20, memoryBound>>20)
	}
}

// Forty wrong user codes looked up at once by one account: exactly the account's
// limit are looked up (404), the rest refused before the lookup (429).
func TestUserCodeBurstChecksOnlyTheLimit(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "vera", "pw")
	tok := in.AppToken(t, "vera", "pw")
	const n = 40
	statuses := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Distinct well-formed codes that were never issued.
			code := fmt.Sprintf("BBBB-%c%c%cB", "BCDFGHJK"[i%8], "BCDFG"[i/8%5], "BC"[i/40%2])
			req, _ := http.NewRequest("GET", in.URL+"/api/v1/link-requests/"+code, nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := in.Client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("answers %v", statuses)
	if got := statuses[http.StatusNotFound]; got != links.DefaultAccountFailures {
		t.Errorf("%d of %d unknown codes looked up, want exactly %d", got, n, links.DefaultAccountFailures)
	}
	if statuses[http.StatusNotFound]+statuses[http.StatusTooManyRequests] != n {
		t.Errorf("answers %v, want only 404 and 429", statuses)
	}
}
