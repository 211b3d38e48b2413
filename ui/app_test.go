package ui

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

// fakeConnector accepts one issuer.
type fakeConnector struct {
	mu    sync.Mutex
	good  string
	calls []string
}

func (f *fakeConnector) Connect(ctx context.Context, issuer, caFile string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, issuer)
	if issuer != f.good {
		return &auth.DiscoveryError{Issuer: issuer, Kind: auth.ErrNotOpenID}
	}
	return nil
}

// fakeSession signs in whoever is next in line; SignIn waits for release
// when set, like a browser taking its time.
type fakeSession struct {
	mu       sync.Mutex
	next     []devices.Me
	accounts []devices.Me
	current  string
	release  chan struct{}
}

func (f *fakeSession) SignIn(ctx context.Context) (devices.Me, error) {
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
		}
		// A call cancelled before the release gives up, whichever case select
		// picked: it must not take the account meant for the next call.
		if err := ctx.Err(); err != nil {
			return devices.Me{}, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.next) == 0 {
		return devices.Me{}, errors.New("no account")
	}
	me := f.next[0]
	f.next = f.next[1:]
	f.accounts = append(f.accounts, me)
	f.current = me.Subject
	return me, nil
}

func (f *fakeSession) Accounts(ctx context.Context) ([]devices.Me, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accounts), f.current, nil
}

func (f *fakeSession) Switch(ctx context.Context, subject string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = subject
	return nil
}

func (f *fakeSession) SignOut(ctx context.Context, subject string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts = slices.DeleteFunc(f.accounts, func(m devices.Me) bool { return m.Subject == subject })
	if f.current == subject {
		f.current = ""
		if len(f.accounts) > 0 {
			f.current = f.accounts[0].Subject
		}
	}
	return nil
}

// startApp makes the app window at a desktop size, starts it, and closes it
// when the test ends.
func startApp(t *testing.T, a fyne.App, svc Services, opts Options) (*App, fyne.Window) {
	t.Helper()
	desk := NewApp(a, svc, opts)
	w := desk.Window()
	w.Resize(fyne.NewSize(960, 720))
	t.Cleanup(func() { locked(func() { desk.Stop(); w.Close() }) })
	locked(desk.Start)
	return desk, w
}

func TestAppFirstRunSetupSignInAndSwitch(t *testing.T) {
	a := test.NewTempApp(t)
	conn := &fakeConnector{good: testIssuer}
	sess := &fakeSession{next: []devices.Me{demoAccount(), {Subject: "u2", DisplayName: "Grace Hopper"}},
		release: make(chan struct{})}
	desk, w := startApp(t, a, Services{Connector: conn, Session: sess, Link: &fakeLink{req: demoRequest()},
		Devices: &fakeDevices{list: sampleDevices(4), events: make(chan devices.Event)}}, Options{})

	// First run: setup. A wrong address is explained; the right one is saved.
	var setup *SetupScreen
	locked(func() {
		setup = desk.setup
		if setup == nil {
			t.Fatal("no setup screen on first run")
		}
		setup.issuer.SetText("https://wrong.example")
		test.Tap(setup.check)
	})
	waitFor(t, "the setup failure", func() bool { return contains(setup.status.Text, "isn't a Linkdesk") })
	shot(t, w, "setup-failed")
	locked(func() {
		setup.issuer.SetText("link.example.com")
		test.Tap(setup.check)
	})
	waitFor(t, "the sign-in screen", func() bool { return desk.signIn != nil })
	if got := a.Preferences().String(PrefIssuer); got != testIssuer {
		t.Fatalf("saved issuer %q", got)
	}

	// Sign in: waiting state, then the main tabs with the account in the header.
	locked(func() { test.Tap(desk.signIn.start) })
	waitFor(t, "the waiting state", func() bool { return desk.signIn.waiting.Visible() })
	shot(t, w, "signin-waiting")
	close(sess.release)
	waitFor(t, "the main tabs", func() bool { return desk.acctLabel != nil && desk.acctLabel.Text == "Ada Lovelace (ada@example.com)" })
	waitFor(t, "the devices to load", func() bool { return len(desk.devs.all) == 4 })
	shot(t, w, "main-link")
	locked(func() {
		desk.tabs.SelectIndex(1)
	})
	shot(t, w, "main-devices")

	// Add a second account and switch back from the accounts screen.
	locked(desk.showAddAccount)
	locked(func() { test.Tap(desk.signIn.start) })
	waitFor(t, "the second account", func() bool { return desk.account.Subject == "u2" })
	locked(func() { desk.tabs.SelectIndex(2) })
	waitFor(t, "both accounts listed", func() bool { return len(desk.accts.accounts) == 2 })
	shot(t, w, "main-accounts")
	var use *widget.Button
	locked(func() { use = findButton(desk.accts.list, "Use") })
	if use == nil {
		t.Fatal("no Use button for the other account")
	}
	locked(func() { test.Tap(use) })
	waitFor(t, "the switch to Ada", func() bool { return desk.account.Subject == "u1" })
	locked(func() {
		if desk.tabs.SelectedIndex() != 2 {
			t.Errorf("after switching on the accounts tab, tab %d is on show", desk.tabs.SelectedIndex())
		}
	})

	// Signing out the last account returns to sign-in.
	locked(func() { desk.accts.SignOut("u1") })
	waitFor(t, "Grace to be current", func() bool { return desk.account.Subject == "u2" })
	locked(func() { desk.accts.SignOut("u2") })
	waitFor(t, "the sign-in screen", func() bool { return desk.signIn != nil && desk.account.Subject == "" })
}

func TestAppStartsWithSavedIssuerAndAccount(t *testing.T) {
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	svc := &fakeLink{req: demoRequest()}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: svc,
		Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the main tabs", func() bool { return desk.account.Subject == "u1" })
	// The code entry has the focus: typing goes straight into it.
	locked(func() {
		if w.Canvas().Focused() != desk.link.Code.entry {
			t.Fatalf("code entry not focused: %T", w.Canvas().Focused())
		}
		test.Type(w.Canvas().Focused(), "wdjbmjht")
		desk.link.Code.entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	})
	waitFor(t, "the confirm screen", func() bool { return desk.link.confirm != nil })
	shot(t, w, "main-confirm")
}

func TestAppSignedOutAsksToSignInKeepingCode(t *testing.T) {
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1", next: []devices.Me{demoAccount()}}
	svc := &fakeLink{req: demoRequest(), lookErr: &devices.APIError{Status: 401, Code: devices.CodeUnauthorized}}
	desk, _ := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: svc,
		Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the main tabs", func() bool { return desk.account.Subject == "u1" && desk.signIn == nil })
	locked(func() {
		test.Type(desk.link.Code.entry, "WDJBMJHT")
		test.Tap(desk.link.Code.cont)
	})
	waitFor(t, "the sign-in screen", func() bool { return desk.signIn != nil })
	locked(func() {
		if !contains(desk.signIn.status.Text, "Your sign-in has ended") {
			t.Errorf("status = %q", desk.signIn.status.Text)
		}
	})
	svc.mu.Lock()
	svc.lookErr = nil
	svc.mu.Unlock()
	locked(func() { test.Tap(desk.signIn.start) })
	waitFor(t, "the main tabs again", func() bool { return desk.signIn == nil })
	locked(func() {
		if got := desk.link.Code.entry.Text; got != "WDJB-MJHT" {
			t.Errorf("typed code lost across sign-in: %q", got)
		}
	})
}

func TestAppNotifiesWhenDeviceLinked(t *testing.T) {
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	devs := &fakeDevices{events: make(chan devices.Event)}
	desk, _ := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: devs}, Options{Issuer: testIssuer})
	waitFor(t, "the events stream", func() bool { return desk.account.Subject == "u1" && desk.devs.events.running() })
	d := sampleDevices(2)[0]
	test.AssertNotificationSent(t, fyne.NewNotification("Device linked",
		"Living room TV is now linked to Ada Lovelace (ada@example.com). Not you? Unlink it in Linkdesk."), func() {
		devs.events <- devices.Event{Type: devices.EventLinked, Device: d}
		waitFor(t, "the device to appear", func() bool { return len(desk.devs.all) == 1 })
	})
	// A device linked in this very window is not announced again.
	self := sampleDevices(2)[1]
	locked(func() { desk.link.lastLinked = self.ID })
	test.AssertNotificationSent(t, nil, func() {
		devs.events <- devices.Event{Type: devices.EventLinked, Device: self}
		waitFor(t, "the second device to appear", func() bool { return len(desk.devs.all) == 2 })
	})
}

func TestAppEscapeClosesDialog(t *testing.T) {
	a := test.NewTempApp(t)
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	devs := &fakeDevices{list: sampleDevices(3), events: make(chan devices.Event)}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: devs}, Options{Issuer: testIssuer})
	waitFor(t, "the devices", func() bool { return desk.devs != nil && len(desk.devs.all) == 3 })
	locked(func() {
		desk.tabs.SelectIndex(1)
		test.Tap(desk.devs.unlinkAll)
		if topOverlay(w) == nil {
			t.Fatal("no confirmation dialog")
		}
		w.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyEscape})
		if topOverlay(w) != nil {
			t.Error("Escape did not close the dialog")
		}
	})
	devs.mu.Lock()
	defer devs.mu.Unlock()
	if len(devs.unlinks) != 0 {
		t.Errorf("Escape unlinked %v", devs.unlinks)
	}
}

func TestAppAccountMenuSwitchesAccounts(t *testing.T) {
	a := test.NewTempApp(t)
	grace := devices.Me{Subject: "u2", DisplayName: "Grace Hopper"}
	sess := &fakeSession{accounts: []devices.Me{demoAccount(), grace}, current: "u1"}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the main tabs", func() bool { return desk.account.Subject == "u1" })
	waitFor(t, "both accounts", func() bool { return len(desk.accts.accounts) == 2 })
	locked(func() { test.Tap(desk.acctMenu) })
	shot(t, w, "account-menu")
	locked(func() {
		menu := topOverlay(w)
		for _, want := range []string{"Ada Lovelace (ada@example.com)", "Grace Hopper", "Add another account…", "Sign out"} {
			if menu == nil || findTappableWithText(menu, want) == nil {
				t.Fatalf("account menu lacks %q", want)
			}
		}
		test.Tap(findTappableWithText(menu, "Grace Hopper"))
	})
	waitFor(t, "the switch to Grace", func() bool { return desk.acctLabel.Text == "Grace Hopper" })
}

func TestAppSettingsChangeServiceAndBack(t *testing.T) {
	a := test.NewTempApp(t)
	conn := &fakeConnector{good: testIssuer}
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	desk, w := startApp(t, a, Services{Connector: conn, Session: sess, Link: &fakeLink{},
		Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the main tabs", func() bool { return desk.account.Subject == "u1" })
	locked(func() {
		desk.tabs.SelectIndex(2)
		test.Tap(findButton(desk.accts.Content(), "Change service…"))
		if desk.setup == nil || desk.setup.issuer.Text != testIssuer {
			t.Fatal("settings did not open prefilled")
		}
		desk.setup.issuer.SetText("https://other.example")
		test.Tap(desk.setup.check)
	})
	waitFor(t, "the refusal", func() bool {
		return desk.setup.status.Visible() && contains(desk.setup.status.Text, "isn't a Linkdesk")
	})
	locked(func() {
		back := findButton(w.Content(), "Back")
		if back == nil {
			t.Fatal("no Back button in settings while signed in")
		}
		test.Tap(back)
		if !hasText(w.Content(), "Ada Lovelace (ada@example.com)") || desk.Issuer() != testIssuer {
			t.Errorf("Back did not return to the tabs unchanged (issuer %q)", desk.Issuer())
		}
	})
}

// TestAppOpenLinkWaitsForSignIn: a link opened before sign-in is kept, and once
// signed in the link tab shows its confirmation; a link for another service
// gets the phishing warning instead of a lookup.
func TestAppOpenLinkWaitsForSignIn(t *testing.T) {
	a := test.NewTempApp(t)
	sess := &fakeSession{next: []devices.Me{demoAccount()}}
	svc := &fakeLink{req: demoRequest()}
	desk, _ := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: svc,
		Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the sign-in screen", func() bool { return desk.signIn != nil })

	locked(func() { desk.OpenLink(devices.LinkURL(testIssuer, "WDJB-MJHT")) })
	if looked, _, _ := svc.calls(); len(looked) != 0 {
		t.Fatalf("looked up before sign-in: %v", looked)
	}
	locked(func() { test.Tap(desk.signIn.start) })
	waitFor(t, "the confirm screen for the opened link", func() bool { return desk.link != nil && desk.link.confirm != nil })
	if looked, _, _ := svc.calls(); len(looked) != 1 || looked[0] != "WDJBMJHT" {
		t.Fatalf("looked up %v, want the link's code once", looked)
	}

	// Later, from the Linked devices tab, a link for another service.
	locked(func() { desk.tabs.SelectIndex(1) })
	locked(func() { desk.OpenLink(devices.LinkURL("https://link.phish.example", "BCDF-GHJK")) })
	locked(func() {
		if desk.tabs.SelectedIndex() != 0 || desk.link.confirm != nil {
			t.Fatalf("tab %d, confirm %v: want the code screen", desk.tabs.SelectedIndex(), desk.link.confirm)
		}
		if !contains(desk.link.Code.hint.Text, "it points at link.phish.example") {
			t.Fatalf("hint = %q", desk.link.Code.hint.Text)
		}
	})
	if looked, _, _ := svc.calls(); len(looked) != 1 {
		t.Fatalf("a foreign link was looked up: %v", looked)
	}
}

// Errors and codes of one account never show in another's tabs: after a switch,
// and after signing out.
func TestAppAccountChangeStartsFromCleanTabs(t *testing.T) {
	a := test.NewTempApp(t)
	grace := devices.Me{Subject: "u2", DisplayName: "Grace Hopper"}
	sess := &fakeSession{accounts: []devices.Me{demoAccount(), grace}, current: "u1"}
	link := &fakeLink{lookErr: &devices.APIError{Status: 429, Code: devices.CodeRateLimited}}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: link,
		Devices: &fakeDevices{list: sampleDevices(2), events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the main tabs", func() bool { return desk.account.Subject == "u1" && desk.devs != nil && len(desk.devs.all) == 2 })
	locked(func() {
		test.Type(desk.link.Code.entry, "WDJBMJHT")
		test.Tap(desk.link.Code.cont)
	})
	waitFor(t, "Too many tries", func() bool { return hasText(w.Content(), "Too many tries") })

	locked(func() { desk.accts.SwitchTo("u2") })
	waitFor(t, "the switch to Grace", func() bool { return desk.account.Subject == "u2" })
	locked(func() {
		if hasText(w.Content(), "Too many tries") || desk.link.Code.entry.Text != "" {
			t.Fatalf("Ada's code or error shown to Grace (entry %q)", desk.link.Code.entry.Text)
		}
	})

	locked(func() {
		test.Type(desk.link.Code.entry, "WDJBMJHT")
		test.Tap(desk.link.Code.cont)
	})
	waitFor(t, "Too many tries for Grace", func() bool { return hasText(w.Content(), "Too many tries") })
	locked(func() { desk.accts.SignOut("u2") })
	waitFor(t, "Ada again", func() bool { return desk.account.Subject == "u1" })
	locked(func() { desk.accts.SignOut("u1") })
	waitFor(t, "the sign-in screen", func() bool { return desk.signIn != nil && desk.account.Subject == "" })
	locked(func() {
		if desk.link != nil || desk.devs != nil {
			t.Fatal("signed out, yet the link or devices tab is kept")
		}
	})
}

// A computer without a system keyring: the app asks at once whether to sign in
// for this session only, and once signed in says it won't remember.
func TestAppWithoutKeyringSignsInForThisSessionOnly(t *testing.T) {
	a := test.NewTempApp(t)
	sess := &keyringlessSession{fakeSession: fakeSession{next: []devices.Me{demoAccount()}}, accountsErr: true}
	desk, w := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the question", func() bool { return desk.signIn != nil && desk.signIn.noKeyring.Visible() })
	locked(func() {
		if w.Canvas().Focused() != desk.signIn.sessionOnly {
			t.Errorf("focus on %T, want the session-only button", w.Canvas().Focused())
		}
		if desk.signIn.status.Visible() || desk.signIn.start.Visible() {
			t.Errorf("a keyring error or the plain sign-in button shown beside the question: %q", desk.signIn.status.Text)
		}
		test.Tap(findButton(desk.signIn.noKeyring, "Sign in for this session only"))
	})
	waitFor(t, "the main tabs", func() bool { return desk.account.Subject == "u1" })
	shot(t, w, "main-session-only")
	locked(func() {
		if !desk.memoryNote.Visible() || !hasText(w.Content(), "Not remembered after you close Linkdesk") {
			t.Error("no word that the sign-in won't be remembered")
		}
	})
	if sess.browserOpenings() != 1 {
		t.Fatalf("browser opened %d times", sess.browserOpenings())
	}
}

// A start with the saved service writes no preferences: every write rewrites
// Fyne's preferences file, which its watcher may then read half-written.
func TestAppStartWritesNoUnchangedPreferences(t *testing.T) {
	a := test.NewTempApp(t)
	a.Preferences().SetString(PrefIssuer, testIssuer)
	var writes int // under the UI lock: listeners run where the write happens
	a.Preferences().AddChangeListener(func() { writes++ })
	sess := &fakeSession{accounts: []devices.Me{demoAccount()}, current: "u1"}
	desk, _ := startApp(t, a, Services{Connector: &fakeConnector{good: testIssuer}, Session: sess, Link: &fakeLink{},
		Devices: &fakeDevices{events: make(chan devices.Event)}}, Options{Issuer: testIssuer})
	waitFor(t, "the main tabs", func() bool { return desk.account.Subject == "u1" })
	locked(func() {
		if writes != 0 {
			t.Errorf("%d preference writes on a start with nothing new to remember", writes)
		}
	})
}
