package ui

import (
	"context"
	"log/slog"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

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

	link      *LinkFlow
	devs      *DevicesScreen
	accts     *AccountsScreen
	signIn    *SignInScreen
	setup     *SetupScreen
	tabs      *container.AppTabs
	header    *fyne.Container
	brand     *fyne.Container
	acctLabel *widget.Label
	acctMenu  *widget.Button

	startup task
	// pendingLink is a link opened before the person was signed in; it is
	// shown once they are.
	pendingLink *string
}

// NewApp builds the main window; call Start, then ShowAndRun on the window.
func NewApp(a fyne.App, svc Services, opts Options) *App {
	app := &App{fyneApp: a, svc: svc, opts: opts}
	app.win = a.NewWindow("Linkdesk")
	if opts.Icon != nil {
		app.win.SetIcon(opts.Icon)
	}
	app.win.Resize(fyne.NewSize(900, 680))
	app.win.Canvas().SetOnTypedKey(func(ev *fyne.KeyEvent) {
		if ev.Name == fyne.KeyEscape {
			dismissDialog(app.win)
		}
	})

	linkSvc := watchLink{LinkService: svc.Link, onSignedOut: app.signedOut}
	devSvc := watchDevices{DeviceService: svc.Devices, onSignedOut: app.signedOut}
	app.link = NewLinkFlow(linkSvc, app.Issuer, func() devices.Me { return app.account }, app.win)
	app.link.EnableScanning(svc.Pictures)
	app.win.SetOnDropped(app.dropped)
	app.devs = NewDevicesScreen(devSvc, app.win, app.notifyLinked)
	app.devs.OnUnlinked = app.link.DeviceUnlinked
	app.accts = NewAccountsScreen(svc.Session, app.win, app.accountChanged, app.showAddAccount, app.showSettings)
	app.accts.SetIssuer(opts.Issuer)

	app.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("Link a device", theme.ContentAddIcon(), app.link.Content()),
		container.NewTabItemWithIcon("Linked devices", theme.ListIcon(), app.devs.Content()),
		container.NewTabItemWithIcon("Accounts & settings", theme.SettingsIcon(), app.accts.Content()),
	)
	app.tabs.SetTabLocation(container.TabLocationLeading)
	app.tabs.OnSelected = func(t *container.TabItem) {
		switch t.Content {
		case app.link.Content():
			app.link.Focus(app.win.Canvas())
		case app.accts.Content():
			app.accts.Load()
		}
	}

	app.acctLabel = widget.NewLabel("")
	app.acctMenu = widget.NewButtonWithIcon("", theme.AccountIcon(), app.showAccountMenu)
	app.brand = container.NewHBox(app.brandCopy()...)
	app.header = container.NewBorder(nil, widget.NewSeparator(), app.brand,
		container.NewHBox(app.acctLabel, app.acctMenu))
	return app
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
	a.showBusy("Connecting to " + a.opts.Issuer + "…")
	issuer, caFile := a.opts.Issuer, a.opts.CAFile
	a.startup.start(func(ctx context.Context) error {
		return a.svc.Connector.Connect(ctx, issuer, caFile)
	}, func(err error) {
		if err != nil {
			a.showSetup(err, false)
			return
		}
		a.savePrefs()
		a.afterConnect()
	})
}

// savePrefs remembers the service address and CA file (never tokens).
func (a *App) savePrefs() {
	prefs := a.fyneApp.Preferences()
	prefs.SetString(PrefIssuer, a.opts.Issuer)
	prefs.SetString(PrefCAFile, a.opts.CAFile)
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
		backButton = widget.NewButtonWithIcon("Back", theme.NavigateBackIcon(), back)
	}
	a.win.SetContent(a.framed(backButton, s.Content()))
	s.Focus(a.win.Canvas())
	logScreen(name)
}

// logScreen logs that the screen called name is now on the window.
func logScreen(name string) { slog.Info("ui: screen", "screen", name) }

// afterConnect finds the current account and shows sign-in or the tabs.
func (a *App) afterConnect() {
	a.showBusy("Loading your accounts…")
	var list []devices.Me
	var current string
	a.startup.start(func(ctx context.Context) error {
		var err error
		list, current, err = a.svc.Session.Accounts(ctx)
		return err
	}, func(err error) {
		a.accts.SetAccounts(list, current)
		if i := slices.IndexFunc(list, func(m devices.Me) bool { return m.Subject == current }); i >= 0 {
			a.showMain(list[i])
			return
		}
		a.showSignIn(false)
		if err != nil {
			// Say why no account could be loaded (say, a locked keyring); signing in may still work.
			a.signIn.ShowStatus(Explain(err))
		}
	})
}

func (a *App) showSetup(err error, canGoBack bool) {
	a.stopScreens()
	a.setup = NewSetupScreen(a.svc.Connector, a.win, a.opts.Issuer, a.opts.CAFile, func(issuer, caFile string) {
		changed := issuer != a.opts.Issuer
		a.opts.Issuer, a.opts.CAFile = issuer, caFile
		a.savePrefs()
		a.accts.SetIssuer(issuer)
		if changed {
			a.account = devices.Me{}
			a.devs.Clear()
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
	bar := container.NewBorder(nil, widget.NewSeparator(), container.NewHBox(a.brandCopy()...), right)
	return container.NewBorder(bar, nil, nil, nil, content)
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
	switched := me.Subject != a.account.Subject
	a.account = me
	a.accts.SetCurrent(me)
	a.acctLabel.SetText(accountName(me))
	a.win.SetContent(container.NewBorder(a.header, nil, nil, nil, a.tabs))
	logScreen("main")
	if switched {
		a.devs.Clear()
		a.link.ShowCode()
	}
	a.devs.Reload()
	a.accts.Load()
	a.link.Focus(a.win.Canvas())
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
	a.devs.Stop()
	a.showSignIn(false)
	a.signIn.ShowStatus("Your sign-in has ended. Sign in again to continue.")
}

// accountChanged follows a switch or sign-out made on the accounts screen.
func (a *App) accountChanged(current *devices.Me) {
	if current == nil {
		a.account = devices.Me{}
		a.devs.Clear()
		a.link.Reset()
		a.showSignIn(false)
		return
	}
	a.showMain(*current)
}

func (a *App) showAccountMenu() {
	items := []*fyne.MenuItem{}
	for _, m := range a.accts.Accounts() {
		item := fyne.NewMenuItem(accountName(m), func() {
			if m.Subject != a.account.Subject {
				a.accts.SwitchTo(m.Subject)
			}
		})
		item.Checked = m.Subject == a.account.Subject
		items = append(items, item)
	}
	items = append(items, fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Add another account…", a.showAddAccount),
		fyne.NewMenuItem("Sign out", func() {
			a.accts.ConfirmSignOut(a.account)
		}))
	menu := widget.NewPopUpMenu(fyne.NewMenu("", items...), a.win.Canvas())
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(a.acctMenu)
	menu.ShowAtPosition(pos.Add(fyne.NewPos(0, a.acctMenu.Size().Height)))
}

// notifyLinked tells the person, with a desktop notification, that a device
// was linked to their account.
// Links made in this window are not announced again.
func (a *App) notifyLinked(d devices.Device) {
	if a.link.LinkedHere(d.ID) {
		return
	}
	name := linkedLabel(d).title()
	a.fyneApp.SendNotification(fyne.NewNotification("Device linked",
		name+" is now linked to "+accountName(a.account)+"."))
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
	a.link.Stop()
	a.devs.Stop()
	a.accts.Stop()
}
