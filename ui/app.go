package ui

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

// Preference keys the app keeps in Fyne preferences. Only the service address
// and CA file path live there; tokens never do.
const (
	PrefIssuer = "issuer"
	PrefCAFile = "ca_file"
)

// Services are the small interfaces the app's screens need; main.go adapts
// the auth and devices packages to them.
type Services struct {
	Connector ServiceConnector
	Session   SessionService
	Link      LinkService
	Devices   DeviceService
	Pictures  PictureSource // camera and clipboard for scanning; nil hides the camera and clipboard buttons
}

// Options configure the app at start.
type Options struct {
	Issuer string // service address; empty shows the setup screen first
	CAFile string // extra CA to trust, optional
	Icon   fyne.Resource
}

// App is Linkdesk's main window: setup, sign-in, then tabs for linking a
// device, linked devices, and accounts & settings, with the current account
// always visible in the header.
type App struct {
	fyneApp fyne.App
	svc     Services
	opts    Options
	win     fyne.Window

	account devices.Me // the current account; the list of all is the accounts screen's

	// link, devs, accts and tabs are built when first shown (see buildMain);
	// link and devs are nil while no account is signed in.
	link      *LinkFlow
	devs      *DevicesScreen
	notices   *linkNotices // new-link notices under the header, with link and devs
	accts     *AccountsScreen
	signIn    *SignInScreen
	setup     *SetupScreen
	tabs      *container.AppTabs
	header    *fyne.Container
	brand     *fyne.Container
	acctLabel *widget.Label
	acctMenu  *widget.Button
	// memoryNote says that sign-ins are kept for this run only (no system keyring).
	memoryNote *widget.Label

	startup task
	// pendingLink is a link opened before the person was signed in; it is
	// shown once they are.
	pendingLink *string
}

// NewApp makes the main window; call Start, then ShowAndRun on the window. The
// signed-in screens (the tabs) are built when first shown, not here, so the
// first screen is drawn without paying for them.
func NewApp(a fyne.App, svc Services, opts Options) *App {
	app := &App{fyneApp: a, svc: svc, opts: opts}
	app.win = a.NewWindow("Linkdesk")
	if opts.Icon != nil {
		app.win.SetIcon(opts.Icon)
	}
	app.win.Resize(fyne.NewSize(900, 680))
	app.win.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) {
		// Escape closes a dialog; with none open it leaves the confirm screen for the
		// code, deciding nothing (wherever the keyboard focus is).
		if ev.Name == fyne.KeyEscape && !dismissDialog(app.win) && app.link != nil {
			app.link.Escape()
		}
	})
	app.win.SetOnDropped(app.dropped)
	return app
}

// accounts is the accounts screen, made on first use: it also holds the app's
// one list of accounts, which the header's menu reads.
func (a *App) accounts() *AccountsScreen {
	if a.accts == nil {
		a.accts = NewAccountsScreen(a.svc.Session, a.win, a.accountChanged, a.showAddAccount, a.showSettings)
		a.accts.SetIssuer(a.opts.Issuer)
	}
	return a.accts
}

// buildMain makes the tabs and the header, the first time they are shown and
// again after the account changed (see dropAccountScreens).
func (a *App) buildMain() {
	if a.tabs != nil {
		return
	}
	own := newOwnLinks(a.svc.Link) // links made here are not announced here
	linkSvc := watchLink{LinkService: own, onSignedOut: a.signedOut}.withNearby(a.svc.Link)
	devSvc := watchDevices{DeviceService: a.svc.Devices, onSignedOut: a.signedOut}
	link := NewLinkFlow(linkSvc, a.Issuer, func() devices.Me { return a.account }, a.win)
	link.EnableScanning(a.svc.Pictures)
	a.link = link
	a.devs = NewDevicesScreen(devSvc, a.win, a.notifyLinked)
	a.notices = newLinkNotices(devSvc, own)
	a.notices.onShown = a.notifyDesktop
	a.notices.relayout = a.relayout
	devs := a.devs
	a.notices.unlinked = func(id string) { devs.removeIDs(id) }
	a.devs.OnUnlinked = func(id string) {
		link.DeviceUnlinked(id)
		a.notices.gone(id)
	}
	accts := a.accounts()

	a.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon(lang.L("Link a device"), theme.ContentAddIcon(), link.Content()),
		container.NewTabItemWithIcon(lang.L("Linked devices"), theme.ListIcon(), a.devs.Content()),
		container.NewTabItemWithIcon(lang.L("Accounts & settings"), theme.SettingsIcon(), accts.Content()),
	)
	a.tabs.SetTabLocation(container.TabLocationLeading)
	a.tabs.OnSelected = func(t *container.TabItem) {
		switch t.Content {
		case link.Content():
			link.Focus(a.win.Canvas())
		case accts.Content():
			accts.Load()
		}
	}

	if a.header == nil {
		a.acctLabel = widget.NewLabel("")
		a.memoryNote = widget.NewLabelWithStyle(lang.L("Not remembered after you close Linkdesk"), fyne.TextAlignTrailing, fyne.TextStyle{Italic: true})
		a.memoryNote.Importance = widget.WarningImportance
		a.memoryNote.Hide()
		a.acctMenu = widget.NewButtonWithIcon("", theme.AccountIcon(), a.showAccountMenu)
		a.brand = container.NewHBox(a.brandCopy()...)
		a.header = container.NewBorder(nil, widget.NewSeparator(), a.brand,
			container.NewHBox(a.memoryNote, a.acctLabel, a.acctMenu))
	}
}

// dropAccountScreens ends and forgets the link and devices tabs, so nothing an
// account saw there (a code, an error, "Too many tries", its devices) survives
// into another account's; they are built afresh when next shown.
func (a *App) dropAccountScreens() {
	if a.link != nil {
		a.link.Stop()
	}
	if a.devs != nil {
		a.devs.Stop()
	}
	if a.notices != nil {
		a.notices.clear()
	}
	a.link, a.devs, a.notices, a.tabs = nil, nil, nil, nil
}

// Window is the main window.
func (a *App) Window() fyne.Window { return a.win }

// Issuer is the configured service address.
func (a *App) Issuer() string { return a.opts.Issuer }

// Start shows the first screen: setup without a service, else connect and
// show sign-in or the main tabs.
func (a *App) Start() {
	if a.opts.Issuer == "" {
		a.showSetup(nil, false)
		return
	}
	a.showBusy(lang.L("Connecting to {{.Service}}…", map[string]any{"Service": a.opts.Issuer}))
	issuer, caFile := a.opts.Issuer, a.opts.CAFile
	// Connect and read the accounts in one go off the UI goroutine, so the first
	// screen after "Connecting…" is the one that stays (no second busy screen
	// and UI round trip in between).
	var connErr error
	var list []devices.Me
	var current string
	a.startup.start(func(ctx context.Context) error {
		if connErr = a.svc.Connector.Connect(ctx, issuer, caFile); connErr != nil {
			return connErr
		}
		var err error
		list, current, err = a.svc.Session.Accounts(ctx)
		return err
	}, func(err error) {
		if connErr != nil {
			a.showSetup(connErr, false)
			return
		}
		a.savePrefs()
		a.accountsLoaded(list, current, err)
	})
}

// savePrefs remembers the service address and CA file (never tokens). It writes
// only what changed: each write makes Fyne rewrite its preferences file (truncate,
// then write), and Fyne's watcher of that file may read it empty in between
// ("Preferences load error: EOF"). Fyne itself skips a value that is unchanged,
// but not "" for a key never set, which was written on every start.
func (a *App) savePrefs() {
	prefs := a.fyneApp.Preferences()
	for k, v := range map[string]string{PrefIssuer: a.opts.Issuer, PrefCAFile: a.opts.CAFile} {
		if prefs.String(k) != v {
			prefs.SetString(k, v)
		}
	}
}

func (a *App) showBusy(msg string) {
	p := widget.NewProgressBarInfinite()
	a.win.SetContent(centered(420, container.NewCenter(widget.NewLabel(msg)), p))
}

// screen is what the app needs from a screen it shows in the whole window: its
// content, where the keyboard focus goes, and a way to end its background work.
type screen interface {
	Content() fyne.CanvasObject
	Focus(fyne.Canvas)
	Stop()
}

// showScreen puts s in the window under the app's bar (with a Back button doing
// back, when not nil), focuses it, and then logs "ui: screen <name>": the log
// line says the screen is on the window (scripts wait for it).
func (a *App) showScreen(name string, s screen, back func()) {
	var backButton *widget.Button
	if back != nil {
		backButton = widget.NewButtonWithIcon(lang.L("Back"), theme.NavigateBackIcon(), back)
	}
	a.win.SetContent(a.framed(backButton, s.Content()))
	s.Focus(a.win.Canvas())
	logScreen(name)
}

// logScreen logs that the screen called name is now on the window.
func logScreen(name string) { slog.Info("ui: screen", "screen", name) }

// afterConnect finds the current account and shows sign-in or the tabs.
func (a *App) afterConnect() {
	a.showBusy(lang.L("Loading your accounts…"))
	var list []devices.Me
	var current string
	a.startup.start(func(ctx context.Context) error {
		var err error
		list, current, err = a.svc.Session.Accounts(ctx)
		return err
	}, func(err error) { a.accountsLoaded(list, current, err) })
}

// accountsLoaded shows the tabs for the current account, or sign-in (saying why
// no account could be read, when one could not).
func (a *App) accountsLoaded(list []devices.Me, current string, err error) {
	a.accounts().SetAccounts(list, current)
	if i := slices.IndexFunc(list, func(m devices.Me) bool { return m.Subject == current }); i >= 0 {
		a.showMain(list[i])
		return
	}
	a.showSignIn(false)
	if errors.Is(err, auth.ErrKeyringUnavailable) || errors.Is(err, auth.ErrKeyringTimeout) {
		if _, ok := a.svc.Session.(KeyringChecker); ok {
			// No keyring to read accounts from: offer this session only at once.
			slog.Info("ui: keyring can't keep sign-ins", "err", err)
			a.signIn.askSessionOnly()
			return
		}
	}
	if err != nil {
		// Say why no account could be loaded (say, a locked keyring); signing in may still work.
		a.signIn.ShowStatus(Explain(err))
	}
}

func (a *App) showSetup(err error, canGoBack bool) {
	a.stopScreens()
	a.setup = NewSetupScreen(a.svc.Connector, a.win, a.opts.Issuer, a.opts.CAFile, func(issuer, caFile string) {
		changed := issuer != a.opts.Issuer
		a.opts.Issuer, a.opts.CAFile = issuer, caFile
		a.savePrefs()
		a.accounts().SetIssuer(issuer)
		if changed {
			a.account = devices.Me{}
			a.dropAccountScreens()
		}
		a.afterConnect()
	})
	if err != nil {
		a.setup.ShowError(err)
	}
	var back func()
	if canGoBack {
		back = func() {
			a.setup.Stop()
			a.showMain(a.account)
		}
	}
	a.showScreen("setup", a.setup, back)
}

// framed puts content under a bar with the app's name and, when back is not
// nil, a Back button.
func (a *App) framed(back *widget.Button, content fyne.CanvasObject) fyne.CanvasObject {
	var right fyne.CanvasObject
	if back != nil {
		right = back
	}
	var top fyne.CanvasObject = container.NewBorder(nil, widget.NewSeparator(), container.NewHBox(a.brandCopy()...), right)
	if back != nil && a.notices != nil {
		// Signed in (settings, adding an account): new links are still announced.
		top = container.NewVBox(top, a.notices.root)
	}
	return container.NewBorder(top, nil, nil, nil, content)
}

// brandCopy makes a fresh logo and title (a canvas object can only be in one place).
func (a *App) brandCopy() []fyne.CanvasObject {
	var logo fyne.CanvasObject = widget.NewIcon(theme.ComputerIcon())
	if a.opts.Icon != nil {
		logo = widget.NewIcon(a.opts.Icon)
	}
	return []fyne.CanvasObject{logo, widget.NewLabelWithStyle("Linkdesk", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})}
}

func (a *App) showSettings() { a.showSetup(nil, a.account.Subject != "") }

// showSignIn shows the sign-in screen; adding says another account is being
// added (so Back returns to the tabs).
func (a *App) showSignIn(adding bool) {
	a.stopScreens()
	a.signIn = NewSignInScreen(a.svc.Session, a.opts.Issuer, func(me devices.Me) {
		a.showMain(me)
	}, a.showSettings)
	var back func()
	if adding {
		back = func() { a.showMain(a.account) }
	}
	a.showScreen("signin", a.signIn, back)
}

func (a *App) showAddAccount() { a.showSignIn(true) }

// showMain shows the tabs for account me.
func (a *App) showMain(me devices.Me) {
	a.stopScreens()
	tab := 0 // the tab on show stays on show across a switch
	if a.tabs != nil {
		tab = a.tabs.SelectedIndex()
	}
	if me.Subject != a.account.Subject {
		a.dropAccountScreens() // another account: start from empty tabs
	}
	fresh := a.tabs == nil
	a.buildMain()
	a.account = me
	a.accts.SetCurrent(me)
	a.acctLabel.SetText(accountName(me))
	if kc, ok := a.svc.Session.(KeyringChecker); ok && !kc.RemembersSignIns() {
		a.memoryNote.Show()
	} else {
		a.memoryNote.Hide()
	}
	a.win.SetContent(container.NewBorder(container.NewVBox(a.header, a.notices.root), nil, nil, nil, a.tabs))
	logScreen("main")
	switch {
	case fresh && tab == 0:
		a.link.ShowCode() // logs "ui: screen code" now that it is on the window
	case fresh:
		a.tabs.SelectIndex(tab)
	case tab == 0:
		// Only the shown tab can take the focus (else Fyne logs "Failed to focus
		// object which is not part of the canvas").
		a.link.Focus(a.win.Canvas())
	}
	a.devs.Reload()
	a.accts.Load()
	if a.pendingLink != nil {
		link := *a.pendingLink
		a.pendingLink = nil
		a.OpenLink(link)
	}
}

// OpenLink shows a link the person opened outside the app (a linkdesk:// link
// from the browser, or one given on the command line): the window comes
// forward on the link tab with the code filled in and looked up, or with a
// warning when the link is for another service. It never approves anything.
// Before sign-in it waits until the person has signed in. An empty link only
// brings the window forward.
func (a *App) OpenLink(link string) {
	a.win.Show()
	a.win.RequestFocus()
	if link == "" {
		return
	}
	if a.account.Subject == "" || a.signIn != nil {
		a.pendingLink = &link
		return
	}
	a.showLinkTab()
	a.link.Fill(link)
}

// showLinkTab brings the "Link a device" tab's code screen forward.
func (a *App) showLinkTab() {
	a.tabs.SelectIndex(0)
	a.link.ShowCode()
}

// dropped scans a picture dropped anywhere on the window, once signed in.
func (a *App) dropped(_ fyne.Position, items []fyne.URI) {
	if a.account.Subject == "" || a.signIn != nil || len(items) == 0 {
		return
	}
	a.showLinkTab()
	a.link.ScanDropped(items)
}

// signedOut follows a sign-in that ended (revoked, expired): it asks the
// person to sign in again, keeping whatever they had typed.
func (a *App) signedOut() {
	if a.signIn != nil || a.account.Subject == "" {
		return // already on the sign-in screen
	}
	if a.devs != nil {
		a.devs.Stop()
	}
	if a.notices != nil {
		a.notices.clear()
	}
	a.showSignIn(false)
	a.signIn.ShowStatus(lang.L("Your sign-in has ended. Sign in again to continue."))
}

// accountChanged follows a switch or sign-out made on the accounts screen.
func (a *App) accountChanged(current *devices.Me) {
	if current == nil {
		a.account = devices.Me{}
		a.dropAccountScreens()
		a.showSignIn(false)
		return
	}
	a.showMain(*current)
}

func (a *App) showAccountMenu() {
	items := []*fyne.MenuItem{}
	for _, m := range a.accounts().Accounts() {
		item := fyne.NewMenuItem(accountName(m), func() {
			if m.Subject != a.account.Subject {
				a.accts.SwitchTo(m.Subject)
			}
		})
		item.Checked = m.Subject == a.account.Subject
		items = append(items, item)
	}
	items = append(items, fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem(lang.L("Add another account…"), a.showAddAccount),
		fyne.NewMenuItem(lang.L("Sign out"), func() {
			a.accts.ConfirmSignOut(a.account)
		}))
	menu := widget.NewPopUpMenu(fyne.NewMenu("", items...), a.win.Canvas())
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(a.acctMenu)
	menu.ShowAtPosition(pos.Add(fyne.NewPos(0, a.acctMenu.Size().Height)))
}

// notifyLinked tells the person that a device was linked to their account, with
// a banner under the header and a desktop notification (see linkNotices). Links
// made in this window are not announced again.
func (a *App) notifyLinked(d devices.Device) {
	if a.notices == nil || (a.link != nil && a.link.LinkedHere(d.ID)) {
		return
	}
	a.notices.linked(d)
}

// notifyDesktop sends the desktop notification of a new link's notice.
func (a *App) notifyDesktop(d devices.Device) {
	name := linkedLabel(d).title()
	a.fyneApp.SendNotification(fyne.NewNotification(lang.L("Device linked"),
		lang.L("{{.Device}} is now linked to {{.Account}}. Not you? Unlink it in Linkdesk.", map[string]any{"Device": name, "Account": accountName(a.account)})))
}

// relayout lays the window's screen out again after the notices changed height.
func (a *App) relayout() {
	if c := a.win.Content(); c != nil {
		c.Refresh()
	}
}

// stopScreens ends the start-up work and the whole-window screens (setup,
// sign-in), before another screen takes the window.
func (a *App) stopScreens() {
	a.startup.stop()
	if a.signIn != nil {
		a.signIn.Stop()
		a.signIn = nil
	}
	if a.setup != nil {
		a.setup.Stop()
	}
}

// Stop ends all background work (on quit).
func (a *App) Stop() {
	a.stopScreens()
	a.dropAccountScreens()
	if a.accts != nil {
		a.accts.Stop()
	}
}
