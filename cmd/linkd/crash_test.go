package main

// Crash tests (issue 11): a real linkd process is killed with SIGKILL in the middle of
// concurrent approvals, token collection and refresh loops, then restarted on the same
// data directory. The devices are x/oauth2 clients; one that loses its connection waits
// until linkd is back and asks again with what it holds (the same device code or the
// same refresh token), as a real device would. Afterwards every device whose approval
// was acknowledged must hold working tokens, once, and the account's device list must
// be exactly the devices holding tokens.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

const (
	crashDevices = 30 // devices per run
	crashRefresh = 4  // refreshes per device in the refresh scenario
	// crashApprover is how many approvals run at once. Each holds a reservation of the
	// account's code-lookup limit (10 per 15 minutes) while in flight; a kill leaks those,
	// and the retries after the restart hold as many again plus any "already used"
	// answers: 3 + 3 + 3 stays under the limit.
	crashApprover = 3
	crashRetries  = 20 // reconnections a client tries before the test calls it stuck
	crashPassword = "correct horse battery staple"
)

// killMoments are the points, as a count of successes out of total, after which linkd
// is killed: the first success, about a third, about two thirds.
func killMoments(total int) []int { return []int{1, total / 3, 2 * total / 3} }

// crashRig is one linkd process with the account alice signed in to the app, and the
// kiosk client's configuration for devices.
type crashRig struct {
	t        *testing.T
	ctx      context.Context // bounds the run
	p        *linkdProcess
	app      *oauth2.Token
	kiosk    *oauth2.Config
	userinfo string

	reapproved  atomic.Int64 // approvals asked again after a broken connection
	alreadyUsed atomic.Int64 // of those, answered "already used": committed before the kill
}

func newCrashRig(t *testing.T) *crashRig {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = linkd.AddUser(ctx, db, linkd.NewUser{Username: "alice", DisplayName: "Alice", Email: "alice@example.com", Password: crashPassword})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := startLinkd(t, dir)
	app, err := linkdtest.SignInAt(ctx, p.URL, p.Client, nil, "alice", crashPassword, "")
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	r := &crashRig{t: t, ctx: ctx, p: p, app: app, kiosk: &oauth2.Config{
		ClientID: devices.KioskClientID,
		Endpoint: oauth2.Endpoint{DeviceAuthURL: p.URL + "/device_authorization", TokenURL: p.URL + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams},
		Scopes: []string{"openid", "profile", "offline_access"},
	}}
	var disc struct {
		Userinfo string `json:"userinfo_endpoint"`
	}
	if status := r.getJSON(p.URL+"/.well-known/openid-configuration", "", &disc); status != http.StatusOK || disc.Userinfo == "" {
		t.Fatalf("discovery: %d %+v", status, disc)
	}
	r.userinfo = disc.Userinfo
	return r
}

// oauthCtx makes x/oauth2 use the client that trusts linkd.
func (r *crashRig) oauthCtx() context.Context {
	return context.WithValue(r.ctx, oauth2.HTTPClient, r.p.Client)
}

// crashDevice is one kiosk. Its fields are written by the goroutine that drives it
// and read once that goroutine is done.
type crashDevice struct {
	name      string
	auth      *oauth2.DeviceAuthResponse
	acked     bool          // linkd acknowledged the approval (or, asked again, said it was used)
	tok       *oauth2.Token // the newest tokens it received
	final     string        // the final error that made it give up, if any
	retries   int           // times it lost its connection and asked again
	refreshed int           // refreshes that succeeded
}

// newDevices asks for n device codes, one per uniquely named device.
func (r *crashRig) newDevices(n int) []*crashDevice {
	r.t.Helper()
	devs := make([]*crashDevice, n)
	for i := range devs {
		name := fmt.Sprintf("kiosk-%02d", i)
		auth, err := r.kiosk.DeviceAuth(r.oauthCtx(), oauth2.SetAuthURLParam(devices.ParamDeviceName, name),
			oauth2.SetAuthURLParam(devices.ParamDeviceKind, string(devices.KindKiosk)))
		if err != nil {
			r.t.Fatalf("device authorization %s: %v", name, err)
		}
		devs[i] = &crashDevice{name: name, auth: auth}
	}
	return devs
}

// approve asks the management API to approve d's user code; err is a transport error.
func (r *crashRig) approve(d *crashDevice) (status int, code string, err error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodPost,
		r.p.URL+devices.APIPrefix+"/link-requests/"+url.PathEscape(d.auth.UserCode)+"/approve", strings.NewReader("{}"))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+r.app.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.p.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var prob devices.Problem
	if resp.StatusCode != http.StatusOK {
		json.NewDecoder(resp.Body).Decode(&prob)
	}
	return resp.StatusCode, prob.Code, nil
}

// approveRetrying approves d as the app would: when the connection breaks it waits for
// linkd and asks again, taking "already used" as the earlier, unanswered approval having
// been committed. It reports whether the approval is acknowledged.
func (r *crashRig) approveRetrying(d *crashDevice) bool {
	retried := false
	for range crashRetries {
		status, code, err := r.approve(d)
		switch {
		case err != nil:
			if r.ctx.Err() != nil || r.p.WaitUp(r.ctx) != nil {
				return false // the run is over (verify counts it unacknowledged)
			}
			if !retried {
				r.reapproved.Add(1)
			}
			retried = true
		case status == http.StatusOK:
			d.acked = true
			return true
		case status == http.StatusConflict && code == devices.CodeAlreadyUsed && retried:
			r.alreadyUsed.Add(1)
			d.acked = true
			return true
		default:
			r.t.Errorf("approve %s: %d %s", d.name, status, code)
			return false
		}
	}
	r.t.Errorf("approve %s: still no answer after %d tries", d.name, crashRetries)
	return false
}

// mustApproveAll approves every device while linkd runs undisturbed.
func (r *crashRig) mustApproveAll(devs []*crashDevice) {
	r.t.Helper()
	for _, d := range devs {
		if status, code, err := r.approve(d); err != nil || status != http.StatusOK {
			r.t.Fatalf("approve %s: %d %s %v", d.name, status, code, err)
		}
		d.acked = true
	}
}

// collect is the device waiting for its tokens with x/oauth2's DeviceAccessToken: when
// the connection breaks it waits for linkd and polls again with the same device code;
// it stops at tokens or at a final OAuth error.
func (r *crashRig) collect(d *crashDevice) {
	for {
		tok, err := r.kiosk.DeviceAccessToken(r.oauthCtx(), d.auth)
		if err == nil {
			d.tok = tok
			return
		}
		if r.giveUp(d, err) {
			return
		}
	}
}

// refresh is the device renewing its tokens n times in a row, each time as if its access
// token had expired. When the connection breaks it waits for linkd and asks again with
// the same refresh token it still holds; a final OAuth error ends it. each is called
// after every success.
func (r *crashRig) refresh(d *crashDevice, n int, each func()) {
	for d.refreshed < n {
		old := *d.tok
		old.Expiry = time.Now().Add(-time.Minute)
		tok, err := r.kiosk.TokenSource(r.oauthCtx(), &old).Token()
		if err == nil {
			d.tok = tok
			d.refreshed++
			each()
			continue
		}
		if r.giveUp(d, err) {
			return
		}
	}
}

// giveUp decides after a failed token request: a final OAuth answer (or the run's end,
// or too many reconnections) ends the device; a broken connection waits for linkd.
func (r *crashRig) giveUp(d *crashDevice, err error) bool {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		d.final = re.ErrorCode
		if d.final == "" {
			d.final = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		}
		return true
	case r.ctx.Err() != nil:
		d.final = "test deadline: " + err.Error()
		return true
	case d.retries >= crashRetries:
		d.final = "too many reconnections: " + err.Error()
		return true
	}
	d.retries++
	if r.p.WaitUp(r.ctx) != nil {
		d.final = "linkd never came back"
		return true
	}
	return false
}

// getJSON GETs u (with a bearer token unless empty) and decodes a 200 answer into v.
func (r *crashRig) getJSON(u, bearer string, v any) int {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, u, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := r.p.Client.Do(req)
	if err != nil {
		r.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			r.t.Fatalf("GET %s: %v", u, err)
		}
	}
	return resp.StatusCode
}

// crashCounts are the outcome of one run, as the note reports them.
type crashCounts struct {
	acknowledged int // approvals linkd acknowledged
	linked       int // acknowledged devices ending with working access and refresh tokens
	lost         int // acknowledged devices without working tokens
	doubled      int // device names listed more than once
	phantom      int // listed devices that hold no working tokens
	unlisted     int // devices holding working tokens that the list lacks
	unseen       int // listed devices without a last-seen time
}

// verify checks the end state after the last restart and logs the counts: every
// acknowledged device holds tokens that work (userinfo answers 200, and a refresh
// succeeds), no device is listed twice, the account's device list is exactly the
// devices holding working tokens, and each listed device has been seen.
func (r *crashRig) verify(label string, devs []*crashDevice) {
	t := r.t
	var c crashCounts
	working := map[string]bool{}
	why := map[string]int{} // why acknowledged devices are lost
	for _, d := range devs {
		if d.acked {
			c.acknowledged++
		}
		switch {
		case d.tok == nil:
			why["no tokens: "+d.final]++
		case r.getJSON(r.userinfo, d.tok.AccessToken, nil) != http.StatusOK:
			why[fmt.Sprintf("access token refused (gave up with %q)", d.final)]++
		case d.final != "":
			why["gave up with "+d.final]++
		default:
			working[d.name] = true
		}
	}
	// The list is checked before the final refreshes: a refresh records the device as
	// seen and would hide a device that got its tokens but was never recorded so.
	var list devices.DeviceList
	if status := r.getJSON(r.p.URL+devices.APIPrefix+"/devices", r.app.AccessToken, &list); status != http.StatusOK {
		t.Fatalf("GET /devices: %d", status)
	}
	listed := map[string]int{}
	for _, dv := range list.Devices {
		if dv.Client.ID != devices.KioskClientID {
			continue
		}
		if listed[dv.Name]++; listed[dv.Name] == 2 {
			c.doubled++
		}
		if !working[dv.Name] {
			c.phantom++
		}
		if dv.LastSeenAt == nil {
			c.unseen++
		}
	}
	for name := range working {
		if listed[name] == 0 {
			c.unlisted++
		}
	}
	for _, d := range devs {
		if !working[d.name] {
			continue
		}
		old := *d.tok
		old.Expiry = time.Now().Add(-time.Minute)
		tok, err := r.kiosk.TokenSource(r.oauthCtx(), &old).Token()
		if err != nil || r.getJSON(r.userinfo, tok.AccessToken, nil) != http.StatusOK {
			why[fmt.Sprintf("final refresh failed: %v", err)]++
			delete(working, d.name)
		}
	}
	for _, d := range devs {
		if d.acked && working[d.name] {
			c.linked++
		}
	}
	c.lost = c.acknowledged - c.linked
	retries := 0
	for _, d := range devs {
		retries += d.retries
	}
	t.Logf("%s: acknowledged %d, linked %d, lost %d, doubled %d (listed without working tokens %d, holding tokens but unlisted %d, never seen %d; "+
		"device reconnections %d; approvals asked again %d, of them already used %d)",
		label, c.acknowledged, c.linked, c.lost, c.doubled, c.phantom, c.unlisted, c.unseen, retries, r.reapproved.Load(), r.alreadyUsed.Load())
	reasons := make([]string, 0, len(why))
	for k, n := range why {
		reasons = append(reasons, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(reasons)
	for _, s := range reasons {
		t.Logf("%s: lost: %s", label, s)
	}
	if c.acknowledged != len(devs) {
		t.Errorf("%d of %d approvals acknowledged", c.acknowledged, len(devs))
	}
	if c.lost > 0 || c.doubled > 0 || c.phantom > 0 || c.unlisted > 0 || c.unseen > 0 {
		t.Errorf("%s: %d of %d acknowledged devices lost their link, %d doubled, %d listed without working tokens, %d holding tokens but unlisted, %d listed but never seen",
			label, c.lost, c.acknowledged, c.doubled, c.phantom, c.unlisted, c.unseen)
	}
}

// killWhen kills linkd once kill is closed (or every client is done first, which fails
// the run: the kill moment was never reached), restarts it, and waits for the clients.
func (r *crashRig) killWhen(kill, done <-chan struct{}) {
	r.t.Helper()
	select {
	case <-kill:
	case <-done:
		r.t.Fatal("the clients finished before the kill moment")
	case <-r.ctx.Done():
		<-done // they give up at the deadline; none may log after the test ends
		r.t.Fatal("the kill moment never came")
	}
	r.p.Kill()
	r.p.Restart()
	select {
	case <-done:
	case <-r.ctx.Done():
		<-done
		r.t.Fatal("the clients did not finish after the restart")
	}
}

// counter closes its channel when the count reaches at.
type counter struct {
	n    atomic.Int64
	at   int64
	kill chan struct{}
}

func newCounter(at int) *counter { return &counter{at: int64(at), kill: make(chan struct{})} }

func (c *counter) add() {
	if c.n.Add(1) == c.at {
		close(c.kill)
	}
}

// runAll runs f for every device in its own goroutine; the channel closes when all are done.
func runAll(devs []*crashDevice, f func(*crashDevice)) <-chan struct{} {
	return goN(len(devs), func(i int) { f(devs[i]) })
}

// goN runs f(0) … f(n-1) each in its own goroutine; the channel closes when all returned.
func goN(n int, f func(i int)) <-chan struct{} {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// TestCrashDuringApprovals kills linkd after K approvals were acknowledged while other
// approvals are under way and the devices poll for their tokens; after the restart the
// approver asks again for the approvals it got no answer to.
func TestCrashDuringApprovals(t *testing.T) {
	for _, k := range killMoments(crashDevices) {
		t.Run(fmt.Sprintf("kill_after_%d_approvals", k), func(t *testing.T) {
			r := newCrashRig(t)
			devs := r.newDevices(crashDevices)
			polling := runAll(devs, r.collect)
			acks := newCounter(k)
			queue := make(chan *crashDevice, len(devs))
			for _, d := range devs {
				queue <- d
			}
			close(queue)
			approving := goN(crashApprover, func(int) {
				for d := range queue {
					if r.approveRetrying(d) {
						acks.add()
					}
				}
			})
			r.killWhen(acks.kill, approving)
			<-polling
			r.verify(fmt.Sprintf("approvals, kill after %d of %d", k, len(devs)), devs)
		})
	}
}

// TestCrashDuringTokenCollection kills linkd after K of the approved devices collected
// their tokens with x/oauth2's DeviceAccessToken, all polling at once.
func TestCrashDuringTokenCollection(t *testing.T) {
	for _, k := range killMoments(crashDevices) {
		t.Run(fmt.Sprintf("kill_after_%d_collected", k), func(t *testing.T) {
			r := newCrashRig(t)
			devs := r.newDevices(crashDevices)
			r.mustApproveAll(devs)
			got := newCounter(k)
			done := runAll(devs, func(d *crashDevice) {
				if r.collect(d); d.tok != nil {
					got.add()
				}
			})
			r.killWhen(got.kill, done)
			r.verify(fmt.Sprintf("token collection, kill after %d of %d", k, len(devs)), devs)
		})
	}
}

// TestCrashDuringRefreshLoops kills linkd after K of the linked devices' refreshes
// succeeded, every device refreshing in a loop; a device whose answer was lost asks
// again with the refresh token it still holds.
func TestCrashDuringRefreshLoops(t *testing.T) {
	total := crashDevices * crashRefresh
	for _, k := range killMoments(total) {
		t.Run(fmt.Sprintf("kill_after_%d_refreshes", k), func(t *testing.T) {
			r := newCrashRig(t)
			devs := r.newDevices(crashDevices)
			r.mustApproveAll(devs)
			<-runAll(devs, r.collect)
			for _, d := range devs {
				if d.tok == nil {
					t.Fatalf("%s did not link before any kill: %s", d.name, d.final)
				}
			}
			refreshed := newCounter(k)
			done := runAll(devs, func(d *crashDevice) { r.refresh(d, crashRefresh, refreshed.add) })
			r.killWhen(refreshed.kill, done)
			r.verify(fmt.Sprintf("refresh loops, kill after %d of %d refreshes", k, total), devs)
		})
	}
}
