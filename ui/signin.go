package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

// errNoKeyring marks a sign-in stopped before the browser opened because the
// keyring can't keep it.
var errNoKeyring = errors.New("ui: keyring can't keep a sign-in")

// SignInScreen signs a person in through their browser: one button, then a
// waiting state with progress and Cancel, and plain-words failures.
type SignInScreen struct {
	svc        SessionService
	onSignedIn func(devices.Me)

	start       *widget.Button
	cancel      *widget.Button
	waiting     *fyne.Container
	status      *widget.Label
	noKeyring   *fyne.Container // the "this session only?" question
	sessionOnly *widget.Button
	service     *widget.Label
	body        *fyne.Container
	progress    busyBar
	root        fyne.CanvasObject

	signIn task
}

// NewSignInScreen makes the sign-in screen. issuer names the service on screen;
// onSignedIn runs on the UI goroutine after a successful sign-in; onSettings
// (optional) opens the service settings.
func NewSignInScreen(svc SessionService, issuer string, onSignedIn func(devices.Me), onSettings func()) *SignInScreen {
	s := &SignInScreen{svc: svc, onSignedIn: onSignedIn}
	s.start = widget.NewButtonWithIcon(lang.L("Sign in with your browser"), theme.LoginIcon(), s.Start)
	s.start.Importance = widget.HighImportance
	s.cancel = widget.NewButtonWithIcon(lang.L("Cancel"), theme.CancelIcon(), s.Cancel)
	s.progress = newBusyBar()
	s.waiting = container.NewVBox(
		widget.NewLabelWithStyle(lang.L("Finish signing in with your browser…"), fyne.TextAlignCenter, fyne.TextStyle{Bold: true}),
		s.progress.ProgressBarInfinite,
		container.NewCenter(s.cancel),
	)
	s.waiting.Hide()
	question := wrapped(lang.L("Linkdesk can't reach your system keyring, so it won't remember this sign-in after you close it. Sign in for this session only?"))
	question.Alignment = fyne.TextAlignCenter
	s.sessionOnly = widget.NewButtonWithIcon(lang.L("Sign in for this session only"), theme.LoginIcon(), s.signInForThisRunOnly)
	s.sessionOnly.Importance = widget.HighImportance
	s.noKeyring = container.NewVBox(question, container.NewCenter(container.NewHBox(
		widget.NewButtonWithIcon(lang.L("Cancel"), theme.CancelIcon(), s.Cancel), s.sessionOnly)))
	s.noKeyring.Hide()
	s.status = wrapped("")
	s.status.Alignment = fyne.TextAlignCenter
	s.status.Importance = widget.DangerImportance
	s.status.Hide()
	s.service = wrapped("")
	s.service.Alignment = fyne.TextAlignCenter
	if issuer != "" {
		s.service.SetText(lang.L("Service: {{.Service}}", map[string]any{"Service": issuer}))
	}

	intro := wrapped(lang.L("Linkdesk opens your web browser so you can sign in to your account there. Your password is never typed into this app."))
	intro.Alignment = fyne.TextAlignCenter
	objs := []fyne.CanvasObject{
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(theme.IconInlineSize()*3), widget.NewIcon(theme.AccountIcon()))),
		container.NewCenter(heading(lang.L("Sign in to Linkdesk"))),
		intro,
		s.service,
		container.NewCenter(s.start),
		s.waiting,
		s.noKeyring,
		s.status,
	}
	if onSettings != nil {
		objs = append(objs, container.NewCenter(widget.NewButtonWithIcon(lang.L("Change service…"), theme.SettingsIcon(), onSettings)))
	}
	s.body = centered(460, objs...)
	s.root = s.body
	return s
}

// Content is the screen's canvas object.
func (s *SignInScreen) Content() fyne.CanvasObject { return s.root }

// Focus puts the keyboard focus on the sign-in button, so Space starts signing in.
func (s *SignInScreen) Focus(c fyne.Canvas) { c.Focus(s.start) }

// Start begins signing in.
func (s *SignInScreen) Start() {
	if s.signIn.running() {
		return
	}
	s.ShowStatus("")
	s.noKeyring.Hide()
	s.setWaiting(true)
	kc, _ := s.svc.(KeyringChecker)
	var me devices.Me
	s.signIn.start(func(ctx context.Context) error {
		// Check the keyring before the browser opens: the browser must not say
		// "signed in" when the app can't keep the sign-in.
		if kc != nil && kc.RemembersSignIns() {
			if err := kc.CheckKeyring(ctx); errors.Is(err, auth.ErrKeyringUnavailable) || errors.Is(err, auth.ErrKeyringTimeout) {
				return fmt.Errorf("%w: %w", errNoKeyring, err)
			}
		}
		var err error
		me, err = s.svc.SignIn(ctx)
		return err
	}, func(err error) {
		s.setWaiting(false)
		if errors.Is(err, errNoKeyring) {
			slog.Info("ui: keyring can't keep a sign-in; asking to sign in for this session only", "err", err)
			s.askSessionOnly()
			return
		}
		if err != nil {
			s.ShowStatus(Explain(err))
			return
		}
		if s.onSignedIn != nil {
			s.onSignedIn(me)
		}
	})
}

// askSessionOnly asks whether to sign in for this session only, the system
// keyring being out of reach; it replaces the sign-in button until answered.
func (s *SignInScreen) askSessionOnly() {
	s.ShowStatus("")
	s.start.Hide()
	s.noKeyring.Show()
	s.relayout()
	// The focused sign-in button is hidden now: the keyboard goes to the answer.
	if c := fyne.CurrentApp().Driver().CanvasForObject(s.root); c != nil {
		c.Focus(s.sessionOnly)
	}
}

// signInForThisRunOnly keeps sign-ins in memory from now on and signs in.
func (s *SignInScreen) signInForThisRunOnly() {
	if kc, ok := s.svc.(KeyringChecker); ok {
		kc.RememberForThisRunOnly()
	}
	s.Start()
}

// Cancel stops waiting for the browser, or declines signing in for this session only.
func (s *SignInScreen) Cancel() {
	s.signIn.stop()
	s.noKeyring.Hide()
	s.setWaiting(false)
	s.ShowStatus("")
}

// Stop abandons a sign-in in progress (the screen is going away).
func (s *SignInScreen) Stop() { s.signIn.stop() }

func (s *SignInScreen) setWaiting(on bool) {
	if on {
		s.start.Hide()
		s.waiting.Show()
	} else {
		s.waiting.Hide()
		s.start.Show()
	}
	s.progress.set(on)
	s.relayout()
}

// ShowStatus shows msg under the button (why signing in is needed, or what
// failed); "" hides it.
func (s *SignInScreen) ShowStatus(msg string) {
	s.status.SetText(msg)
	if msg == "" {
		s.status.Hide()
	} else {
		s.status.Show()
	}
	s.relayout()
}

func (s *SignInScreen) relayout() {
	for range 2 {
		s.body.Refresh()
	}
}
