package device

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

// lockedBuffer is a log sink read while linkd writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// linkKiosk runs a kiosk flow against r until it is linked and returns its state log,
// the index of Linked in it and the new link's id. The periodic link check is an hour
// apart, so anything the flow learns sooner came through the push channel.
func linkKiosk(t *testing.T, r *linkdRig) (*Flow, *stateLog, int, string) {
	t.Helper()
	f := r.flow(t, &memTokenStore{}, func(c *Config) { c.UserinfoInterval = time.Hour })
	log, _ := run(t, f)
	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	dev, err := r.app.Approve(t.Context(), s.(ShowingCode).UserCode, "")
	if err != nil {
		t.Fatal(err)
	}
	_, i = log.waitFor(t, i, 60*time.Second, isLinked)
	return f, log, i, dev.ID
}

// Unlinking in the app reaches a linked kiosk on the push channel at once, not at its
// next periodic check (an hour away here): it reports Unlinked and shows a new code.
func TestLinkedKioskHearsUnlinkAtOnce(t *testing.T) {
	r := startLinkd(t, linkdtest.Options{})
	_, log, i, id := linkKiosk(t, r)
	// Wait until the kiosk's long poll is running, so the unlink is heard on it.
	waitLinkedWaiters(t, r, 1)
	if err := r.app.Unlink(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	_, i = log.waitFor(t, i, 60*time.Second, func(s State) bool { u, ok := s.(Unlinked); return ok && !u.ByUs })
	log.waitFor(t, i, 60*time.Second, isShowingCode)
	waitLinkedWaiters(t, r, 0)
}

// waitLinkedWaiters waits until linkd's event hub has n subscriptions (the app's API
// client holds none here, so each is a linked kiosk's long poll).
func waitLinkedWaiters(t *testing.T, r *linkdRig, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.in.Server.Events().Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("event hub has %d subscribers, want %d", r.in.Server.Events().Subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// "Unlink this display" on the kiosk is an unlink like any other: linkd logs it and the
// account's event stream hears of it, so the app's list drops the display at once.
func TestKioskUnlinkingItselfIsLoggedAndPublished(t *testing.T) {
	var logs lockedBuffer
	r := startLinkd(t, linkdtest.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	u, err := r.in.Store.UserByUsername(t.Context(), "ada")
	if err != nil {
		t.Fatal(err)
	}
	f, log, i, id := linkKiosk(t, r)
	sub := r.in.Server.Links().SubscribeAccount(u.Subject, 0)
	defer sub.Close()

	if err := f.Unlink(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-sub.C:
		if ev.Type != devices.EventUnlinked || ev.Device.ID != id || ev.Device.Client.Name != devices.KioskClientName {
			t.Fatalf("account event %+v, want the kiosk unlinked", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no account event for the kiosk's own unlink")
	}
	if l := logs.String(); !strings.Contains(l, `msg="device unlinked"`) || !strings.Contains(l, "device="+id) || !strings.Contains(l, "by=device") {
		t.Fatalf("no device-unlinked log line:\n%s", l)
	}
	log.waitFor(t, i, 60*time.Second, func(s State) bool { u, ok := s.(Unlinked); return ok && u.ByUs })
	if list, err := r.app.Devices(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("devices after the kiosk unlinked itself: %+v %v", list, err)
	}
}

// The linked wait is bounded: a few waits per link at once, the next is refused 429.
func TestLinkedWaitIsCappedPerLink(t *testing.T) {
	r := startLinkd(t, linkdtest.Options{})
	_, log, i, _ := linkKiosk(t, r)
	log.mu.Lock()
	tok := log.states[i].(Linked).Token
	log.mu.Unlock()
	waitLinkedWaiters(t, r, 1) // the kiosk's own
	type answer struct {
		status int
		err    error
	}
	answers := make(chan answer, 8)
	post := func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, r.in.URL+linkedWaitPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := r.in.Client.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		resp.Body.Close()
		answers <- answer{status: resp.StatusCode}
	}
	for range 2 {
		go post()
	}
	waitLinkedWaiters(t, r, 3)
	go post()
	select {
	case a := <-answers:
		if a.err != nil || a.status != http.StatusTooManyRequests {
			t.Fatalf("wait over the cap: %+v, want 429", a)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a wait over the cap was held open")
	}
	// Without a token there is no wait at all.
	resp, err := r.in.Client.Post(r.in.URL+linkedWaitPath, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wait without a token: %d", resp.StatusCode)
	}
}
