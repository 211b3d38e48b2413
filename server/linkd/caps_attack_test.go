package linkd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// Issue 12 item 3: one address asking for device authorizations in a loop gets a
// bounded number stored; the rest are refused with 429, Retry-After and an OAuth error.
func TestAttackDeviceAuthorizationFlood(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	const attempts, workers = 2000, 8
	var stored, refused atomic.Int64
	var bad atomic.Value
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= attempts {
				resp, err := in.Client.PostForm(in.URL+"/device_authorization",
					url.Values{"client_id": {devices.KioskClientID}, "scope": {"openid offline_access"}})
				if err != nil {
					bad.Store(err.Error())
					return
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					stored.Add(1)
				case http.StatusTooManyRequests:
					var e struct{ Error string }
					if json.Unmarshal(body, &e) != nil || e.Error != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
						bad.Store(fmt.Sprintf("429 without Retry-After or OAuth error: %q %s", resp.Header.Get("Retry-After"), body))
					}
					refused.Add(1)
				default:
					bad.Store(fmt.Sprintf("answer %d: %s", resp.StatusCode, body))
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d of %d device authorizations stored from one address, %d refused", stored.Load(), attempts, refused.Load())
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
	if stored.Load() > 50 || refused.Load() != attempts-stored.Load() {
		t.Fatalf("%d of %d device authorizations stored from one address (want at most 50)", stored.Load(), attempts)
	}
}

// Issue 12 item 3: every GET /authorize stores an auth request; one address gets a
// bounded number stored.
func TestAttackAuthorizeFlood(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	noFollow := &http.Client{Transport: in.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	conf := in.AppConfig("http://127.0.0.1:49999/callback")
	const attempts = 300
	stored := 0
	for range attempts {
		u := conf.AuthCodeURL("state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		resp, err := noFollow.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); strings.Contains(loc, "authRequestID=") {
			stored++
		}
	}
	t.Logf("%d of %d authorize requests stored from one address", stored, attempts)
	if stored > 50 {
		t.Fatalf("%d of %d authorize requests stored from one address (want at most 50)", stored, attempts)
	}
}

// postWait starts one POST /device/wait and sends its status code (or 0) to out.
func postWait(in *linkdtest.Instance, ctx context.Context, deviceCode string, out chan<- int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, in.URL+"/device/wait",
		strings.NewReader(url.Values{"client_id": {devices.KioskClientID}, "device_code": {deviceCode}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := in.Client.Do(req)
	if err != nil {
		out <- 0
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	out <- resp.StatusCode
}

// waitTally fires n waits, collects refusals until want of them came (or a deadline
// passed: the code before the fix refuses none), then approves the codes so every held
// wait answers, and returns how many were held and how many refused.
func waitTally(t *testing.T, in *linkdtest.Instance, codes []*oauth2.DeviceAuthResponse, perCode, wantRefused int) (held, refused int) {
	t.Helper()
	u := in.CreateUser(t, "wally", "pw")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	n := len(codes) * perCode
	out := make(chan int, n)
	for _, c := range codes {
		for range perCode {
			go postWait(in, ctx, c.DeviceCode, out)
		}
	}
	got := 0
	deadline := time.After(30 * time.Second)
collect:
	for refused < wantRefused {
		select {
		case st := <-out:
			got++
			if st != http.StatusTooManyRequests {
				t.Fatalf("wait answered %d before any approval", st)
			}
			refused++
		case <-deadline:
			break collect
		}
	}
	for _, c := range codes {
		in.Approve(t, c.UserCode, u.Subject)
	}
	for ; got < n; got++ {
		switch st := <-out; st {
		case http.StatusOK:
			held++
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("wait answered %d", st)
		}
	}
	return held, refused
}

// Issue 12 item 4: waits on one device code are capped.
func TestAttackWaitsPerDeviceCode(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	da, err := deviceConfig(in, devices.KioskClientID).DeviceAuth(in.Context(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	held, refused := waitTally(t, in, []*oauth2.DeviceAuthResponse{da}, n, n-3)
	t.Logf("%d of %d waits on one device code held, %d refused", held, n, refused)
	if held != 3 {
		t.Fatalf("%d of %d waits on one device code held, want 3", held, n)
	}
}

// Issue 12 item 4: waits from one address are capped.
func TestAttackWaitsPerAddress(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	var codes []*oauth2.DeviceAuthResponse
	for range 15 {
		da, err := deviceConfig(in, devices.KioskClientID).DeviceAuth(in.Context(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, da)
	}
	held, refused := waitTally(t, in, codes, 2, 30-20)
	t.Logf("%d of 30 waits from one address held, %d refused", held, refused)
	if held != 20 {
		t.Fatalf("%d of 30 waits from one address held, want 20", held)
	}
}

// Issue 12 item 4: event streams per account are capped.
func TestAttackEventStreamsPerAccount(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "evan", "pw")
	tok := in.AppToken(t, "evan", "pw")
	const n = 12
	open := 0
	for range n {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, in.URL+devices.APIPrefix+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := in.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			open++
			t.Cleanup(func() { resp.Body.Close() })
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			resp.Body.Close()
		default:
			t.Fatalf("events answered %d", resp.StatusCode)
		}
	}
	t.Logf("%d of %d event streams open for one account", open, n)
	if open != 5 {
		t.Fatalf("%d of %d event streams open for one account, want 5", open, n)
	}
}

// appCode signs cody in through a scripted browser and stops at the loopback
// redirect: it returns the code, its PKCE verifier, the callback address the browser
// passed through, and the browser.
func appCode(t *testing.T, in *linkdtest.Instance, conf *oauth2.Config, loopback string) (code, verifier string, callback *url.URL, b interface {
	Get(string) (*browsertest.Page, error)
}) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	br := in.Browser()
	br.StopAt = func(u *url.URL) bool {
		if u.Path == "/authorize/callback" && callback == nil {
			callback = u
		}
		return u.Host == loopback
	}
	p, err := br.SignIn(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "cody", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if loc := p.Location(); loc != nil {
		code = loc.Query().Get("code")
	}
	if code == "" || callback == nil {
		t.Fatalf("no code (%v) or callback (%v)", p.Location(), callback)
	}
	return code, verifier, callback, br
}

// Issue 12 item 8: one authorization code redeemed by 8 concurrent requests gives one
// set of tokens.
func TestAttackCodeRedeemedOnce(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "cody", "pw")
	const loopback = "127.0.0.1:49998"
	conf := in.AppConfig("http://" + loopback + "/callback")
	code, verifier, _, _ := appCode(t, in, conf, loopback)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, in.Client)
	const n = 8
	var wg sync.WaitGroup
	var won atomic.Int64
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
				won.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	t.Logf("%d of %d concurrent redemptions of one code got tokens", won.Load(), n)
	if won.Load() != 1 {
		t.Errorf("%d of %d concurrent redemptions of one code got tokens, want 1", won.Load(), n)
	}
}

// Issue 12 item 8: re-opening /authorize/callback mints no second code, and the first
// code still works.
func TestAttackCallbackReopened(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "cody", "pw")
	const loopback = "127.0.0.1:49998"
	conf := in.AppConfig("http://" + loopback + "/callback")
	code, verifier, callback, b := appCode(t, in, conf, loopback)
	p, err := b.Get(callback.String())
	if err != nil {
		t.Fatal(err)
	}
	second := ""
	if loc := p.Location(); loc != nil {
		second = loc.Query().Get("code")
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, in.Client)
	_, firstErr := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	t.Logf("re-opened callback minted a second code: %v; first code works: %v", second != "", firstErr == nil)
	if second != "" {
		t.Errorf("re-opening the callback minted a second code")
	}
	if firstErr != nil {
		t.Errorf("the first code stopped working: %v", firstErr)
	}
}
