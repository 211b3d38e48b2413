package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"

	"github.com/linkdesk/linkdesk/devices"
)

// LinkFlow is the "Link a device" tab: the code screen, then the confirm
// screen, then a final result screen, with "Link another device" back to the start.
type LinkFlow struct {
	svc     LinkService
	account func() devices.Me
	window  fyne.Window

	Code    *CodeScreen
	confirm *ConfirmScreen // the confirm screen on show, or nil
	stack   *fyne.Container
	// result is what the result screen on show says, or nil; again is its
	// "Link another device" button.
	result *ConfirmResult
	again  *focusButton
	// lastLinked is the ID of the device linked here last, so the app need not
	// notify about a link the person just made in front of it.
	lastLinked string
	// subject is the account the flow last showed something for: what was typed
	// or refused for one account is never shown to another.
	subject string
}

// NewLinkFlow makes the flow. issuer and account give the configured service and
// the signed-in account at the time they are needed.
func NewLinkFlow(svc LinkService, issuer func() string, account func() devices.Me, w fyne.Window) *LinkFlow {
	f := &LinkFlow{svc: svc, account: account, window: w}
	f.Code = NewCodeScreen(svc, issuer, f.showConfirm)
	f.stack = container.NewStack(f.Code.Content())
	f.subject = account().Subject
	return f
}

// Content is the flow's canvas object.
func (f *LinkFlow) Content() fyne.CanvasObject { return f.stack }

// showScreen puts o in the tab and, when name is set, logs "ui: screen <name>"
// once it is there.
func (f *LinkFlow) showScreen(name string, o fyne.CanvasObject) {
	if o == f.Code.Content() {
		f.Code.StartNearby()
	} else {
		f.Code.StopNearby()
	}
	f.stack.Objects = []fyne.CanvasObject{o}
	f.stack.Refresh()
	if name != "" {
		logScreen(name)
	}
}

func (f *LinkFlow) showConfirm(code string, req devices.LinkRequest) {
	f.stopConfirm()
	f.result = nil
	f.subject = f.account().Subject // the code was looked up for this account
	f.confirm = newConfirmScreen(f.svc, code, f.Code.given, req, f.account(), f.showResult, func(err error) {
		f.stopConfirm()
		f.ShowCode()
		f.Code.ShowError(err)
	})
	f.confirm.onBack = f.ShowCode
	f.showScreen("confirm", f.confirm.Content())
	// Focus the one editable field; Tab then reaches the in-front tick (from
	// another network), Back, Decline and Link device. No button is focused first,
	// so a stray Space or Enter never links a device.
	f.focus(f.confirm.name)
}

func (f *LinkFlow) showResult(r ConfirmResult) {
	f.stopConfirm()
	if r.Approved {
		f.lastLinked = r.Device.ID
	}
	f.result = &r
	screen, again := resultScreen(r, f.account(), f.ShowCode, func(c rune) {
		// Typing on the result screen starts on the next code.
		f.ShowCode()
		f.Code.entry.TypedRune(c)
	})
	f.again = again
	f.showScreen("", screen)
	f.focus(again)
}

// focus gives o the keyboard focus when the flow is on show (a hidden tab's
// objects can't take it).
func (f *LinkFlow) focus(o fyne.Focusable) {
	if f.window != nil && f.stack.Visible() {
		f.window.Canvas().Focus(o)
	}
}

// ShowCode returns to the code screen and focuses it. It keeps what was typed,
// unless it leaves a result screen (that code is spent) or the account
// changed since the flow last showed something (see Reset).
func (f *LinkFlow) ShowCode() {
	f.stopConfirm()
	f.checkAccount()
	if f.result != nil {
		f.result = nil
		f.Code.Reset()
	}
	f.showScreen("code", f.Code.Content())
	if f.window != nil && f.stack.Visible() {
		f.Code.Focus(f.window.Canvas())
	}
}

// checkAccount resets the flow when the signed-in account is not the one it
// last showed something for.
func (f *LinkFlow) checkAccount() {
	if sub := f.account().Subject; sub != f.subject {
		f.subject = sub
		f.result = nil
		f.Code.Reset()
	}
}

// Focus puts the keyboard focus where the step on show wants it: the code
// entry, the confirm screen's name field, or the result's "Link another
// device". After an account change it first returns to an empty code screen.
func (f *LinkFlow) Focus(c fyne.Canvas) {
	if f.account().Subject != f.subject {
		f.ShowCode()
		return
	}
	if f.confirm != nil {
		c.Focus(f.confirm.name)
		return
	}
	if f.result != nil {
		c.Focus(f.again)
		return
	}
	f.Code.Focus(c)
}

// Escape goes back from the confirm screen to the code (keeping it) when the
// flow is on show, for an Escape the window got with nothing focused; it
// reports whether it did.
func (f *LinkFlow) Escape() bool {
	if f.confirm == nil || !f.stack.Visible() {
		return false
	}
	f.confirm.Back()
	return true
}

// DeviceUnlinked follows an unlink made anywhere: a result screen saying that
// device "is now linked" gives way to the code screen.
func (f *LinkFlow) DeviceUnlinked(id string) {
	if f.result != nil && f.result.Approved && f.result.Device.ID == id {
		f.ShowCode()
	}
	if f.lastLinked == id {
		f.lastLinked = ""
	}
}

// EnableScanning shows the code screen's Scan row (see CodeScreen.EnableScanning).
func (f *LinkFlow) EnableScanning(pictures PictureSource) {
	f.Code.EnableScanning(pictures, f.window)
}

// Fill puts an opened link or code in the code field and looks it up.
func (f *LinkFlow) Fill(link string) { f.Code.Fill(link) }

// ScanDropped reads the QR code in a picture dropped on the window.
func (f *LinkFlow) ScanDropped(items []fyne.URI) { f.Code.ScanDropped(items) }

// Reset returns to an empty code screen with no error showing, for another
// account or after sign-out.
func (f *LinkFlow) Reset() {
	f.stopConfirm()
	f.result = nil
	f.Code.Reset()
	f.showScreen("code", f.Code.Content())
	f.subject = f.account().Subject
}

// LinkedHere reports whether the device with id was just linked in this window,
// so the app need not announce it again.
func (f *LinkFlow) LinkedHere(id string) bool { return id != "" && id == f.lastLinked }

// Stop ends the confirm screen's ticker and pending work.
func (f *LinkFlow) Stop() {
	f.stopConfirm()
	f.Code.StopNearby()
}

func (f *LinkFlow) stopConfirm() {
	if f.confirm != nil {
		f.confirm.Stop()
		f.confirm = nil
	}
}
