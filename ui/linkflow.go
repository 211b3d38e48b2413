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
	// lastLinked is the ID of the device linked here last, so the app need not
	// notify about a link the person just made in front of it.
	lastLinked string
}

// NewLinkFlow makes the flow. issuer and account give the configured service and
// the signed-in account at the time they are needed.
func NewLinkFlow(svc LinkService, issuer func() string, account func() devices.Me, w fyne.Window) *LinkFlow {
	f := &LinkFlow{svc: svc, account: account, window: w}
	f.Code = NewCodeScreen(svc, issuer, f.showConfirm)
	f.stack = container.NewStack(f.Code.Content())
	return f
}

// Content is the flow's canvas object.
func (f *LinkFlow) Content() fyne.CanvasObject { return f.stack }

// show puts o in the tab and, when name is set, logs "ui: screen <name>"
// once it is there.
func (f *LinkFlow) show(name string, o fyne.CanvasObject) {
	f.stack.Objects = []fyne.CanvasObject{o}
	f.stack.Refresh()
	if name != "" {
		logScreen(name)
	}
}

func (f *LinkFlow) showConfirm(code string, req devices.LinkRequest) {
	f.stopConfirm()
	f.confirm = NewConfirmScreen(f.svc, code, req, f.account(), f.showResult, func(err error) {
		f.stopConfirm()
		f.ShowCode()
		f.Code.ShowError(err)
	})
	f.show("confirm", f.confirm.Content())
	// Focus the one editable field; Tab then reaches Deny and Link device. Neither
	// button is focused first, so a stray Space or Enter never links a device.
	f.window.Canvas().Focus(f.confirm.name)
}

func (f *LinkFlow) showResult(r ConfirmResult) {
	f.stopConfirm()
	if r.Approved {
		f.lastLinked = r.Device.ID
	}
	screen, again := resultScreen(r, f.account(), func() {
		f.Code.Reset()
		f.ShowCode()
	})
	f.show("", screen)
	if f.window != nil {
		f.window.Canvas().Focus(again)
	}
}

// ShowCode returns to the code screen (keeping what was typed) and focuses it.
func (f *LinkFlow) ShowCode() {
	f.stopConfirm()
	f.show("code", f.Code.Content())
	if f.window != nil {
		f.Code.Focus(f.window.Canvas())
	}
}

// Focus puts the keyboard focus where the step on show wants it: the code
// entry, or the confirm screen's name field.
func (f *LinkFlow) Focus(c fyne.Canvas) {
	if f.confirm != nil {
		c.Focus(f.confirm.name)
		return
	}
	f.Code.Focus(c)
}

// EnableScanning shows the code screen's Scan row (see CodeScreen.EnableScanning).
func (f *LinkFlow) EnableScanning(pictures PictureSource) {
	f.Code.EnableScanning(pictures, f.window)
}

// Fill puts an opened link or code in the code field and looks it up.
func (f *LinkFlow) Fill(link string) { f.Code.Fill(link) }

// ScanDropped reads the QR code in a picture dropped on the window.
func (f *LinkFlow) ScanDropped(items []fyne.URI) { f.Code.ScanDropped(items) }

// Reset clears the code, for another account.
func (f *LinkFlow) Reset() { f.Code.Reset() }

// LinkedHere reports whether the device with id was just linked in this window,
// so the app need not announce it again.
func (f *LinkFlow) LinkedHere(id string) bool { return id != "" && id == f.lastLinked }

// Stop ends the confirm screen's ticker and pending work.
func (f *LinkFlow) Stop() { f.stopConfirm() }

func (f *LinkFlow) stopConfirm() {
	if f.confirm != nil {
		f.confirm.Stop()
		f.confirm = nil
	}
}
