package ui

import (
	"context"
	"slices"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// AccountsScreen is the "Accounts & settings" tab: the accounts signed in on
// this computer, switching between them, adding one, signing out, and the
// service address.
type AccountsScreen struct {
	svc    SessionService
	window fyne.Window
	// onChanged runs after the current account changed (switch or sign-out);
	// current is the new one, or nil when none is left.
	onChanged  func(current *devices.Me)
	onAdd      func()
	onSettings func()

	// accounts and current (a Subject) are the app's one list of the accounts
	// signed in on this computer; the header's menu reads it too.
	accounts []devices.Me
	current  string

	list     *fyne.Container
	issuer   *widget.Label
	progress busyBar
	banner   *banner
	body     *fyne.Container
	root     fyne.CanvasObject

	work task
}

// NewAccountsScreen makes the accounts screen. onAdd starts signing in another
// account; onSettings opens the service setup.
func NewAccountsScreen(svc SessionService, w fyne.Window, onChanged func(current *devices.Me), onAdd, onSettings func()) *AccountsScreen {
	s := &AccountsScreen{svc: svc, window: w, onChanged: onChanged, onAdd: onAdd, onSettings: onSettings}
	s.list = container.NewVBox()
	s.issuer = widget.NewLabel("")
	s.progress = newBusyBar()
	s.banner = newBanner()
	add := widget.NewButtonWithIcon(lang.L("Add another account"), theme.ContentAddIcon(), func() {
		if s.onAdd != nil {
			s.onAdd()
		}
	})
	change := widget.NewButtonWithIcon(lang.L("Change service…"), theme.SettingsIcon(), func() {
		if s.onSettings != nil {
			s.onSettings()
		}
	})
	s.body = container.NewVBox(
		heading(lang.L("Accounts")),
		wrapped(lang.L("These accounts are signed in on this computer. Devices you link go to the current account.")),
		s.list,
		s.progress,
		container.NewHBox(add),
		widget.NewSeparator(),
		heading(lang.L("Service")),
		container.NewBorder(nil, nil, widget.NewIcon(theme.StorageIcon()), change, s.issuer),
	)
	root := container.NewBorder(s.banner.root, nil, nil, nil,
		container.NewVScroll(container.NewPadded(limitWidth(620, s.body))))
	s.banner.parent = root
	s.root = root
	return s
}

// Content is the screen's canvas object.
func (s *AccountsScreen) Content() fyne.CanvasObject { return s.root }

// SetIssuer shows the configured service address.
func (s *AccountsScreen) SetIssuer(issuer string) { s.issuer.SetText(issuer) }

// Stop ends pending work (on quit).
func (s *AccountsScreen) Stop() { s.work.stop() }

// Accounts is the list of accounts signed in on this computer, as last loaded
// or signed in.
func (s *AccountsScreen) Accounts() []devices.Me { return slices.Clone(s.accounts) }

// SetCurrent marks me as the current account, adding it to the list when it
// just signed in.
func (s *AccountsScreen) SetCurrent(me devices.Me) {
	list := s.accounts
	if !slices.ContainsFunc(list, func(m devices.Me) bool { return m.Subject == me.Subject }) {
		list = append(slices.Clone(list), me)
	}
	s.SetAccounts(list, me.Subject)
}

// SetAccounts shows accounts with current (a Subject) marked.
func (s *AccountsScreen) SetAccounts(accounts []devices.Me, current string) {
	s.accounts = slices.Clone(accounts)
	s.current = current
	s.list.Objects = nil
	for _, a := range s.accounts {
		name := widget.NewLabelWithStyle(accountName(a), fyne.TextAlignLeading, fyne.TextStyle{Bold: a.Subject == current})
		var right fyne.CanvasObject
		if a.Subject == current {
			right = container.NewHBox(widget.NewLabel(lang.L("Current")),
				dangerButton(lang.L("Sign out"), theme.LogoutIcon(), func() { s.ConfirmSignOut(a) }))
		} else {
			right = container.NewHBox(
				widget.NewButtonWithIcon(lang.L("Use"), theme.ConfirmIcon(), func() { s.SwitchTo(a.Subject) }),
				widget.NewButtonWithIcon(lang.L("Sign out"), theme.LogoutIcon(), func() { s.ConfirmSignOut(a) }))
		}
		s.list.Add(container.NewBorder(nil, nil, widget.NewIcon(theme.AccountIcon()), right, name))
	}
	if len(s.accounts) == 0 {
		s.list.Add(wrapped(lang.L("No account is signed in.")))
	}
	s.body.Refresh()
}

func dangerButton(text string, icon fyne.Resource, tap func()) *widget.Button {
	b := widget.NewButtonWithIcon(text, icon, tap)
	b.Importance = widget.DangerImportance
	return b
}

// Load fetches the account list.
func (s *AccountsScreen) Load() {
	var list []devices.Me
	var current string
	s.run(func(ctx context.Context) error {
		var err error
		list, current, err = s.svc.Accounts(ctx)
		return err
	}, func() { s.SetAccounts(list, current) }, s.Load)
}

// SwitchTo makes the account with subject current.
func (s *AccountsScreen) SwitchTo(subject string) {
	s.run(func(ctx context.Context) error {
		return s.svc.Switch(ctx, subject)
	}, func() {
		s.SetAccounts(s.accounts, subject)
		if s.onChanged != nil {
			if i := slices.IndexFunc(s.accounts, func(m devices.Me) bool { return m.Subject == subject }); i >= 0 {
				me := s.accounts[i]
				s.onChanged(&me)
			}
		}
	}, nil)
}

// ConfirmSignOut asks whether to sign a out of this computer, and does it.
func (s *AccountsScreen) ConfirmSignOut(a devices.Me) {
	d := dialog.NewConfirm(lang.L("Sign out {{.Account}}?", map[string]any{"Account": accountName(a)}),
		lang.L("Linkdesk forgets this account on this computer. Devices you linked stay linked."),
		func(ok bool) {
			if ok {
				s.SignOut(a.Subject)
			}
		}, s.window)
	d.SetConfirmText(lang.L("Sign out"))
	d.SetConfirmImportance(widget.DangerImportance)
	showDialog(s.window, d)
}

// SignOut signs the account with subject out of this computer.
func (s *AccountsScreen) SignOut(subject string) {
	var list []devices.Me
	var current string
	var signOutErr error
	s.run(func(ctx context.Context) error {
		signOutErr = s.svc.SignOut(ctx, subject)
		var err error
		list, current, err = s.svc.Accounts(ctx)
		return err
	}, func() {
		wasCurrent := subject == s.current
		s.SetAccounts(list, current)
		if signOutErr != nil {
			s.banner.show(Explain(signOutErr), nil)
		}
		if wasCurrent && s.onChanged != nil {
			if i := slices.IndexFunc(list, func(m devices.Me) bool { return m.Subject == current }); i >= 0 {
				me := list[i]
				s.onChanged(&me)
			} else {
				s.onChanged(nil)
			}
		}
	}, nil)
}

func (s *AccountsScreen) run(work func(ctx context.Context) error, ok func(), retry func()) {
	s.banner.hide()
	s.setBusy(true)
	s.work.start(work, func(err error) {
		s.setBusy(false)
		if err != nil {
			s.banner.show(Explain(err), retry)
			return
		}
		ok()
	})
}

func (s *AccountsScreen) setBusy(on bool) {
	s.progress.set(on)
	s.body.Refresh()
}
