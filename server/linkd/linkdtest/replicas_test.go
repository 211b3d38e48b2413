package linkdtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// bearer is an HTTP client of the instance that sends tok.
func bearer(in *linkdtest.Instance, tok *oauth2.Token) *http.Client {
	return &http.Client{Transport: &oauth2.Transport{Source: oauth2.StaticTokenSource(tok), Base: in.Client.Transport}}
}

// poll makes one device-code token request, as a device polling per RFC 8628 does,
// and returns the OAuth error code, or "" and the access token when tokens came back.
func poll(t *testing.T, in *linkdtest.Instance, clientID, deviceCode string) (errCode, accessToken string) {
	t.Helper()
	resp, err := in.Client.PostForm(in.URL+"/oauth/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {clientID}, "device_code": {deviceCode}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK && body.AccessToken != "" {
		return "", body.AccessToken
	}
	if body.Error == "" {
		t.Fatalf("token poll answered %d without an error code", resp.StatusCode)
	}
	return body.Error, ""
}

// linkedWait starts the linked device's push wait (POST /device/linked-wait) on in and
// sends its HTTP status and answer to the returned channel.
func linkedWait(in *linkdtest.Instance, accessToken string) <-chan string {
	out := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, in.URL+"/device/linked-wait", nil)
		req.Header.Set("Authorization", "Bearer "+accessToken)
		resp, err := in.Client.Do(req)
		if err != nil {
			out <- err.Error()
			return
		}
		defer resp.Body.Close()
		var ls struct {
			Status string `json:"status"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&ls)
		out <- fmt.Sprintf("%d %s", resp.StatusCode, ls.Status)
	}()
	return out
}

// waitSubscribed waits until in's hub has n subscribers (a waiter listening), failing
// if early answers first.
func waitSubscribed(t *testing.T, in *linkdtest.Instance, n int, early <-chan string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for in.Server.Events().Subscribers() < n {
		if time.Now().After(deadline) {
			t.Fatal("the wait never subscribed")
		}
		select {
		case s := <-early:
			t.Fatalf("the wait answered %q before the change it waits for", s)
		case <-time.After(time.Millisecond):
		}
	}
}

// nextEvent returns the next event of an account's stream, failing after a deadline.
func nextEvent(t *testing.T, evs <-chan devices.Event, what string) devices.Event {
	t.Helper()
	select {
	case ev, ok := <-evs:
		if !ok {
			t.Fatalf("event stream closed while waiting for %s", what)
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s on the event stream", what)
		panic("unreachable")
	}
}

// Three linkd replicas on one PostgreSQL behave as one service for events: a kiosk's
// push wait on A wakes when the code is approved through B's management API, its
// next poll on A gets tokens at once (A's cache of pending polls was told), and an
// event stream on C sees the link, a rename made on A and the unlink made on B.
func TestReplicasShareEvents(t *testing.T) {
	db := pgtest.DB(t)
	dir := t.TempDir() // one secrets key for the replicas of one service
	a := linkdtest.Start(t, linkdtest.Options{Dir: dir, DB: db})
	b := linkdtest.Start(t, linkdtest.Options{Dir: dir, DB: db})
	c := linkdtest.Start(t, linkdtest.Options{Dir: dir, DB: db})
	a.CreateUser(t, "lee", "pw")
	tok := c.AppToken(t, "lee", "pw")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	evs, err := devices.NewClient(c.URL, bearer(c, tok)).Events(ctx)
	if err != nil {
		t.Fatalf("event stream on C: %v", err)
	}

	kiosk := &oauth2.Config{ClientID: devices.KioskClientID, Endpoint: a.Endpoint(),
		Scopes: []string{"openid", "profile", "offline_access"}}
	da, err := kiosk.DeviceAuth(a.Context(ctx), oauth2.SetAuthURLParam(devices.ParamDeviceKind, "kiosk"))
	if err != nil {
		t.Fatal(err)
	}
	// A first poll on A: pending, and now in A's cache of pending polls.
	if e, _ := poll(t, a, devices.KioskClientID, da.DeviceCode); e != "authorization_pending" {
		t.Fatalf("first poll on A: %q, want authorization_pending", e)
	}

	status := make(chan string, 1)
	go func() {
		resp, err := a.Client.PostForm(a.URL+"/device/wait", url.Values{"client_id": {devices.KioskClientID}, "device_code": {da.DeviceCode}})
		if err != nil {
			status <- err.Error()
			return
		}
		defer resp.Body.Close()
		var ws struct {
			Status string `json:"status"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&ws)
		status <- ws.Status
	}()
	// Approve only once the wait listens on A's hub, so it is the event from B that
	// wakes it (not its first read of the store).
	waitSubscribed(t, a, 1, status)

	// A's hub tells its watchers (the pending-poll cache among them) when B's news of
	// the approval arrives; the wait may also answer by its own re-read of the store.
	relayed := make(chan struct{}, 1)
	stopWatch := a.Server.Events().WatchDeviceAuths(func(key string) {
		if key != "" {
			select {
			case relayed <- struct{}{}:
			default:
			}
		}
	})
	defer stopWatch()
	approved := time.Now()
	dev, err := devices.NewClient(b.URL, bearer(b, tok)).Approve(ctx, da.UserCode, "Hall TV")
	if err != nil {
		t.Fatalf("approve on B: %v", err)
	}
	select {
	case s := <-status:
		latency := time.Since(approved)
		t.Logf("device wait on A answered %q %v after the approval on B was sent", s, latency)
		if s != "approved" {
			t.Fatalf("device wait on A answered %q, want approved", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("device wait on A did not answer after the approval on B")
	}
	select {
	case <-relayed:
	case <-time.After(30 * time.Second):
		t.Fatal("B's approval never reached A's hub through the relay")
	}
	// A's pending cache forgot the code when B's event arrived: tokens at once.
	e, deviceToken := poll(t, a, devices.KioskClientID, da.DeviceCode)
	if e != "" {
		t.Fatalf("poll on A right after the approval on B: %q, want tokens", e)
	}

	if ev := nextEvent(t, evs, "the link"); ev.Type != devices.EventLinked || ev.Device.ID != dev.ID || ev.Device.Name != "Hall TV" {
		t.Fatalf("C's stream: %+v, want %s of %s named Hall TV", ev, devices.EventLinked, dev.ID)
	}
	if _, err := devices.NewClient(a.URL, bearer(a, tok)).Rename(ctx, dev.ID, "Den TV"); err != nil {
		t.Fatalf("rename on A: %v", err)
	}
	if ev := nextEvent(t, evs, "the rename"); ev.Type != devices.EventRenamed || ev.Device.Name != "Den TV" {
		t.Fatalf("C's stream: %+v, want %s to Den TV", ev, devices.EventRenamed)
	}
	// The device waits on A for its link to go; the unlink is made on B.
	gone := linkedWait(a, deviceToken)
	waitSubscribed(t, a, 1, gone)
	unlinked := time.Now()
	if err := devices.NewClient(b.URL, bearer(b, tok)).Unlink(ctx, dev.ID); err != nil {
		t.Fatalf("unlink on B: %v", err)
	}
	select {
	case s := <-gone:
		t.Logf("linked wait on A answered %q %v after the unlink on B was sent", s, time.Since(unlinked))
		if s != "200 unlinked" {
			t.Fatalf("linked wait on A answered %q, want 200 gone", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("linked wait on A did not answer after the unlink on B")
	}
	if ev := nextEvent(t, evs, "the unlink"); ev.Type != devices.EventUnlinked || ev.Device.ID != dev.ID {
		t.Fatalf("C's stream: %+v, want %s of %s", ev, devices.EventUnlinked, dev.ID)
	}
	// The device's next request on A is refused: its tokens died with its link.
	if s := <-linkedWait(a, deviceToken); strings.HasPrefix(s, "200 ") {
		t.Fatalf("the unlinked device's next request on A answered %q, want its token refused", s)
	}
	for _, in := range []*linkdtest.Instance{a, b, c} {
		if st := in.Server.Events().RelayStats(); st.Dropped != 0 || st.Gaps != 1 {
			t.Errorf("relay stats of %s: %+v, want nothing dropped and no resubscription", in.URL, st)
		}
	}
}
