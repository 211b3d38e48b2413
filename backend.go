package main

import (
	"context"
	"image"
	"slices"
	"sync"

	"fyne.io/fyne/v2"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
	"github.com/linkdesk/linkdesk/ui"
)

// prefAccount is the Fyne preference naming the current account (issuer and
// subject; never a token).
const prefAccount = "account"

// backend adapts the auth and devices packages to the small interfaces of the
// ui screens (ui.ServiceConnector, ui.SessionService, ui.LinkService,
// ui.DeviceService). It holds the configured service and the current session.
type backend struct {
	store       *auth.TokenStore
	prefs       fyne.Preferences // may be nil (tests)
	openBrowser func(url string) error

	mu         sync.Mutex
	memoryOnly bool // sign-ins are kept in memory for this run only (no system keyring)
	sessions   *auth.Sessions
	session    *auth.Session
	client     *devices.Client
}

func newBackend(store *auth.TokenStore, prefs fyne.Preferences, openBrowser func(string) error) *backend {
	return &backend{store: store, prefs: prefs, openBrowser: openBrowser}
}

// Connect checks issuer and starts using it; the session of another service is dropped.
func (b *backend) Connect(ctx context.Context, issuer, caFile string) error {
	hc, err := auth.HTTPClient(caFile)
	if err != nil {
		return err
	}
	p, err := auth.CheckIssuer(ctx, hc, issuer)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sessions != nil && b.sessions.Provider.Issuer == p.Issuer {
		b.sessions.Provider, b.sessions.HTTPClient = p, hc
		return nil
	}
	b.sessions = &auth.Sessions{Provider: p, HTTPClient: hc, Store: b.store, OpenBrowser: b.openBrowser}
	b.session, b.client = nil, nil
	return nil
}

func (b *backend) current() (*auth.Sessions, *devices.Client) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions, b.client
}

func (b *backend) connected() (*auth.Sessions, error) {
	s, _ := b.current()
	if s == nil {
		return nil, ui.ErrNoService
	}
	return s, nil
}

func (b *backend) api() (*devices.Client, error) {
	_, c := b.current()
	if c == nil {
		return nil, ui.ErrSignedOut
	}
	return c, nil
}

// use makes sess the current session and remembers its account.
func (b *backend) use(sessions *auth.Sessions, sess *auth.Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sessions != sessions {
		return // the service changed meanwhile
	}
	b.session = sess
	b.client = nil
	key := ""
	if sess != nil {
		b.client = devices.NewClient(sessions.Provider.Issuer, sess.HTTPClient())
		key = sess.Account.Key()
	}
	// Only a change is written: each write rewrites Fyne's preferences file, and
	// an account kept for this run only is not remembered at all.
	if b.prefs != nil && !b.memoryOnly && b.prefs.String(prefAccount) != key {
		b.prefs.SetString(prefAccount, key)
	}
}

// SignIn signs in through the browser and makes that account current.
func (b *backend) SignIn(ctx context.Context) (devices.Me, error) {
	sessions, err := b.connected()
	if err != nil {
		return devices.Me{}, err
	}
	sess, err := sessions.SignIn(ctx)
	if err != nil {
		return devices.Me{}, err
	}
	b.use(sessions, sess)
	return sess.Account.Me(), nil
}

// Accounts lists this service's accounts in the keyring; when none is
// current it resumes the remembered one, else the first.
func (b *backend) Accounts(ctx context.Context) ([]devices.Me, string, error) {
	sessions, err := b.connected()
	if err != nil {
		return nil, "", err
	}
	accts, err := sessions.Accounts(ctx)
	if err != nil {
		return nil, "", err
	}
	list := make([]devices.Me, 0, len(accts))
	for _, a := range accts {
		list = append(list, a.Me())
	}
	b.mu.Lock()
	sess := b.session
	b.mu.Unlock()
	if sess != nil && slices.ContainsFunc(accts, func(a auth.Account) bool { return a.Key() == sess.Account.Key() }) {
		return list, sess.Account.Subject, nil
	}
	want := ""
	if b.prefs != nil {
		want = b.prefs.String(prefAccount)
	}
	sess, err = sessions.ResumeFirst(ctx, accts, want)
	if err != nil {
		return nil, "", err
	}
	b.use(sessions, sess)
	if sess == nil {
		return list, "", nil
	}
	return list, sess.Account.Subject, nil
}

// Switch makes the account with subject current.
func (b *backend) Switch(ctx context.Context, subject string) error {
	sessions, err := b.connected()
	if err != nil {
		return err
	}
	s, err := sessions.Resume(ctx, auth.AccountKey(sessions.Provider.Issuer, subject))
	if err != nil {
		return err
	}
	b.use(sessions, s)
	return nil
}

// SignOut revokes and forgets the account with subject.
func (b *backend) SignOut(ctx context.Context, subject string) error {
	sessions, err := b.connected()
	if err != nil {
		return err
	}
	key := auth.AccountKey(sessions.Provider.Issuer, subject)
	err = sessions.SignOut(ctx, key)
	b.mu.Lock()
	wasCurrent := b.session != nil && b.session.Account.Key() == key
	b.mu.Unlock()
	if wasCurrent {
		b.use(sessions, nil)
	}
	return err
}

// CheckKeyring probes the token store: nil when a sign-in can be kept there (always,
// once sign-ins are kept for this run only).
func (b *backend) CheckKeyring(ctx context.Context) error {
	b.mu.Lock()
	store := b.store
	b.mu.Unlock()
	return store.Probe(ctx)
}

// RememberForThisRunOnly keeps later sign-ins in memory only, for a computer whose
// system keyring can't be reached: they work until Linkdesk quits and never touch disk.
func (b *backend) RememberForThisRunOnly() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.memoryOnly {
		return
	}
	b.memoryOnly = true
	b.store = auth.NewTokenStore(auth.MemoryKeyring(), 0)
	if b.sessions != nil {
		s := *b.sessions
		s.Store = b.store
		b.sessions = &s
		b.session, b.client = nil, nil
	}
}

// RemembersSignIns reports whether sign-ins outlive this run (they are in the system keyring).
func (b *backend) RemembersSignIns() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.memoryOnly
}

// LinkRequest looks up the pending request behind code.
func (b *backend) LinkRequest(ctx context.Context, code string) (devices.LinkRequest, error) {
	c, err := b.api()
	if err != nil {
		return devices.LinkRequest{}, err
	}
	return c.LinkRequest(ctx, code)
}

// ApproveWith links the device behind code, optionally renaming it (see
// devices.Client.ApproveWith).
func (b *backend) ApproveWith(ctx context.Context, code string, a devices.ApproveRequest) (devices.Device, error) {
	c, err := b.api()
	if err != nil {
		return devices.Device{}, err
	}
	return c.ApproveWith(ctx, code, a)
}

// Deny refuses the request behind code.
func (b *backend) Deny(ctx context.Context, code string) error {
	c, err := b.api()
	if err != nil {
		return err
	}
	return c.Deny(ctx, code)
}

// Nearby lists the link requests waiting on this computer's network.
func (b *backend) Nearby(ctx context.Context) ([]devices.NearbyRequest, error) {
	c, err := b.api()
	if err != nil {
		return nil, err
	}
	return c.Nearby(ctx)
}

// NearbyChoices returns the three codes offered for a nearby request.
func (b *backend) NearbyChoices(ctx context.Context, id string) ([]string, error) {
	c, err := b.api()
	if err != nil {
		return nil, err
	}
	return c.NearbyChoices(ctx, id)
}

// PickNearby tells the service which code a nearby device shows.
func (b *backend) PickNearby(ctx context.Context, id, code string) (devices.LinkRequest, error) {
	c, err := b.api()
	if err != nil {
		return devices.LinkRequest{}, err
	}
	return c.PickNearby(ctx, id, code)
}

// Devices lists the linked devices.
func (b *backend) Devices(ctx context.Context) ([]devices.Device, error) {
	c, err := b.api()
	if err != nil {
		return nil, err
	}
	return c.Devices(ctx)
}

// Rename renames a linked device.
func (b *backend) Rename(ctx context.Context, id, name string) (devices.Device, error) {
	c, err := b.api()
	if err != nil {
		return devices.Device{}, err
	}
	return c.Rename(ctx, id, name)
}

// Unlink unlinks a device.
func (b *backend) Unlink(ctx context.Context, id string) error {
	c, err := b.api()
	if err != nil {
		return err
	}
	return c.Unlink(ctx, id)
}

// Events follows the account's events stream.
func (b *backend) Events(ctx context.Context) (<-chan devices.Event, error) {
	c, err := b.api()
	if err != nil {
		return nil, err
	}
	return c.Events(ctx)
}

// services bundles b for ui.NewApp.
func (b *backend) services() ui.Services {
	return ui.Services{Connector: b, Session: b, Link: b, Devices: b, Pictures: computerPictures{}}
}

// computerPictures is this computer's camera and clipboard, for scanning.
type computerPictures struct{}

func (computerPictures) OpenCamera(ctx context.Context) (scan.FrameReader, error) {
	return scan.OpenCamera(ctx)
}

func (computerPictures) ClipboardImage(ctx context.Context) (image.Image, error) {
	return scan.ClipboardImage(ctx)
}

var (
	_ ui.ServiceConnector = (*backend)(nil)
	_ ui.SessionService   = (*backend)(nil)
	_ ui.LinkService      = (*backend)(nil)
	_ ui.NearbyService    = (*backend)(nil)
	_ ui.DeviceService    = (*backend)(nil)
	_ ui.KeyringChecker   = (*backend)(nil)
	_ ui.PictureSource    = computerPictures{}
)
