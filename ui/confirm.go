package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// ConfirmScreen shows exactly what asks to be linked — device, app, permissions,
// where the request came from, the account — with a live countdown, and lets the
// person link or decline it, or go back to the code without deciding. A request
// from another network is linked only after the person ticks that they are in
// front of the device and started this (linkd insists too).
type ConfirmScreen struct {
	svc     LinkDecider
	code    string
	req     devices.LinkRequest
	now     func() time.Time
	onDone  func(ConfirmResult)
	onError func(error) // code problems go back to the code screen
	// onBack returns to the code screen with the code kept, deciding nothing
	// (Back and Escape); nil hides Back.
	onBack func()

	name      *escapeEntry
	inFront   *widget.Check // "I am in front of this device…", shown for another network
	countdown *widget.Label
	approve   *focusButton
	deny      *focusButton
	back      *focusButton
	progress  busyBar
	banner    *banner
	body      *fyne.Container
	root      fyne.CanvasObject

	submit   task
	stopTick func() // ends the countdown ticker
	expired  bool
	busy     bool
}

// inFrontText is the tick a request from another network needs before it can be
// linked (the web confirm page asks the same).
const inFrontText = "I am in front of this device and I started this"

// checkCodeText asks the person to compare a code that came by a link, a scan or a
// paste with the one the device shows (RFC 8628 §3.3.1).
const checkCodeText = "Check that your device shows this code"

// ConfirmResult is how a confirmation ended.
type ConfirmResult struct {
	Approved bool
	Device   devices.Device      // the linked device, when Approved
	Request  devices.LinkRequest // what was asked
}

// NewConfirmScreen makes the confirm screen for req (looked up by code) on
// behalf of account. onDone gets the final result; onCodeError gets failures
// about the code itself (expired, used), which belong on the code screen.
func NewConfirmScreen(svc LinkDecider, code string, req devices.LinkRequest, account devices.Me,
	onDone func(ConfirmResult), onCodeError func(error)) *ConfirmScreen {
	return newConfirmScreen(svc, code, false, req, account, onDone, onCodeError)
}

// newConfirmScreen is NewConfirmScreen for a code that was typed (given false) or
// came whole by a link, a scan or a paste (given true): such a code is shown large,
// to be checked against the device, since the person never read it off the device.
func newConfirmScreen(svc LinkDecider, code string, given bool, req devices.LinkRequest, account devices.Me,
	onDone func(ConfirmResult), onCodeError func(error)) *ConfirmScreen {
	s := &ConfirmScreen{svc: svc, code: code, req: req, now: time.Now, onDone: onDone,
		onError: onCodeError}

	label := deviceLabel(req.Device)
	icon := widget.NewIcon(kindIcon(req.Device.Kind))
	iconBox := container.NewGridWrap(fyne.NewSquareSize(theme.IconInlineSize()*3), icon)
	// The device names itself: its name and model take one line each, cut with an
	// ellipsis, so a long one neither widens the window (pushing Decline and Link
	// device out of it) nor pushes the network warning below the fold; one that is
	// cut is shown whole in a small wrapped line below (and the name in Name).
	title := labelHeading(label.title())
	title.Wrapping, title.Truncation = fyne.TextWrapOff, fyne.TextTruncateEllipsis
	model := widget.NewLabel(label.model())
	model.Truncation = fyne.TextTruncateEllipsis
	labels := container.NewVBox(title, model)
	if full := fullLabels(label, title, model); full != "" {
		labels.Add(full.widget())
	}
	deviceBox := container.NewBorder(nil, nil, iconBox, nil, labels)

	perms := container.NewVBox()
	for _, sc := range req.Scopes {
		perms.Add(container.NewBorder(nil, nil, widget.NewIcon(theme.ConfirmIcon()), nil, wrapped(scopeText(sc))))
	}
	if len(req.Scopes) == 0 {
		perms.Add(wrapped(lang.L("Sign in to your account (no other permissions).")))
	}

	// Where the request came from, in one line; from another network, the tick.
	line := wrapped(originLine(req.Origin))
	lineIcon := theme.InfoIcon() // not a check mark: the permissions above use those
	if !req.Origin.SameNetwork {
		line.Importance = widget.WarningImportance
		line.TextStyle = fyne.TextStyle{Bold: true}
		lineIcon = theme.NewWarningThemedResource(theme.WarningIcon())
	}
	s.inFront = widget.NewCheck(lang.L(inFrontText), func(bool) { s.updateApprove() })
	if req.Origin.SameNetwork {
		s.inFront.Hide()
	}
	origin := container.NewVBox(container.NewBorder(nil, nil, widget.NewIcon(lineIcon), nil, line), s.inFront)

	s.name = newEscapeEntry(s.Back)
	s.name.SetText(req.Device.Name)
	s.name.PlaceHolder = lang.L("Name shown in your linked devices")

	s.countdown = widget.NewLabel("")
	s.countdown.TextStyle = fyne.TextStyle{Bold: true}

	s.approve = newFocusButton(lang.L("Link device"), theme.ConfirmIcon(), s.Approve)
	s.approve.Importance = widget.HighImportance
	s.deny = newFocusButton(lang.L("Decline"), theme.CancelIcon(), s.Deny)
	s.back = newFocusButton(lang.L("Back"), theme.NavigateBackIcon(), s.Back)
	for _, b := range []*focusButton{s.approve, s.deny, s.back} {
		b.onEscape = s.Back
	}
	s.progress = newBusyBar()
	s.banner = newBanner()

	head := heading(lang.L("Link this device?"))
	// The banner takes the heading's place, so the screen fits as before.
	s.banner.onVisible = func(shown bool) {
		setVisible(head, !shown)
		s.body.Refresh()
	}
	facts := widget.NewForm(
		widget.NewFormItem(lang.L("App"), widget.NewLabelWithStyle(clientName(req.Client), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})),
		widget.NewFormItem(lang.L("Account"), widget.NewLabel(accountName(account))),
	)
	body := container.NewVBox(head, widget.NewCard("", "", deviceBox))
	if given {
		body.Add(codeToCheck(code))
	} else {
		facts.Append(lang.L("Code"), widget.NewLabelWithStyle(devices.FormatCode(code), fyne.TextAlignLeading, fyne.TextStyle{Monospace: true}))
	}
	facts.Append(lang.L("Name"), s.name)
	body.Add(facts)
	body.Add(widget.NewLabelWithStyle(lang.L("It will be able to:"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}))
	body.Add(perms)
	body.Add(widget.NewSeparator())
	body.Add(origin)
	body.Add(s.countdown)
	// The buttons stay at the bottom whatever the banner or the window's height
	// do to the details above them, which scroll when they must.
	buttons := container.NewPadded(limitWidth(560, container.NewVBox(s.progress,
		container.NewHBox(s.back.object(), layoutSpacer(), s.deny.object(), s.approve.object()))))
	root := container.NewBorder(s.banner.root, buttons, nil, nil,
		container.NewVScroll(container.NewPadded(limitWidth(560, body))))
	s.banner.parent = root
	s.body = body
	s.root = root
	s.updateApprove()
	s.tick()
	s.stopTick = everySecond(s.tick)
	return s
}

// Content is the screen's canvas object.
func (s *ConfirmScreen) Content() fyne.CanvasObject { return s.root }

// Stop ends the countdown ticker and any submission; call it when the screen
// goes away.
func (s *ConfirmScreen) Stop() {
	s.stopTick()
	s.submit.stop()
}

// tick updates the countdown; at zero it disables linking.
func (s *ConfirmScreen) tick() {
	if s.expired {
		return
	}
	left := s.req.ExpiresAt.Sub(s.now())
	if s.req.ExpiresAt.IsZero() {
		s.countdown.SetText("")
		return
	}
	if left <= 0 {
		s.expired = true
		s.countdown.SetText(lang.L("This code has expired. Get a new code on your device."))
		s.countdown.Importance = widget.DangerImportance
		s.countdown.Refresh()
		s.updateApprove()
		if s.stopTick != nil {
			s.stopTick()
		}
		return
	}
	secs := int((left + time.Second - 1) / time.Second)
	s.countdown.SetText(lang.L("Code expires in {{.Time}}", map[string]any{"Time": fmt.Sprintf("%d:%02d", secs/60, secs%60)}))
	if left < time.Minute {
		s.countdown.Importance = widget.WarningImportance
		s.countdown.Refresh()
	}
}

// codeToCheck is a code that came by a link, a scan or a paste, shown large under
// checkCodeText.
func codeToCheck(code string) fyne.CanvasObject {
	ask := widget.NewLabelWithStyle(lang.L(checkCodeText), fyne.TextAlignCenter, fyne.TextStyle{Bold: true})
	ask.Wrapping = fyne.TextWrapWord
	big := widget.NewLabelWithStyle(devices.FormatCode(code), fyne.TextAlignCenter, fyne.TextStyle{Monospace: true})
	return widget.NewCard("", "", container.NewVBox(ask, container.NewThemeOverride(big, bigTextTheme{theme.Current()})))
}

// needsTick reports whether linking waits for the in-front tick: the request came
// from another network and the person has not ticked it.
func (s *ConfirmScreen) needsTick() bool { return s.inFront.Visible() && !s.inFront.Checked }

// updateApprove enables Link device only when it can be pressed: not expired, not
// busy, and ticked when the request came from another network.
func (s *ConfirmScreen) updateApprove() {
	if s.expired || s.busy || s.needsTick() {
		s.approve.Disable()
	} else {
		s.approve.Enable()
	}
}

// askTick shows the in-front tick, unticked, after linkd refused an approval
// without it (the request looked like this network's when the screen opened).
func (s *ConfirmScreen) askTick() {
	s.inFront.SetChecked(false)
	s.inFront.Show()
	s.updateApprove()
	s.body.Refresh()
}

// Approve links the device.
func (s *ConfirmScreen) Approve() {
	if s.expired || s.submit.running() || s.needsTick() {
		return
	}
	name := strings.TrimSpace(s.name.Text)
	if name == s.req.Device.Name {
		name = ""
	}
	inFront := s.inFront.Visible() && s.inFront.Checked
	var dev devices.Device
	s.run(func(ctx context.Context) error {
		var err error
		dev, err = s.svc.ApproveWith(ctx, s.code, devices.ApproveRequest{DeviceName: name, ConfirmedInFront: inFront})
		return err
	}, func() {
		s.finish(ConfirmResult{Approved: true, Device: dev, Request: s.req})
	}, s.Approve)
}

// Back returns to the code screen, keeping the code, without approving or
// declining: the device keeps waiting until its code expires.
func (s *ConfirmScreen) Back() {
	if s.onBack == nil {
		return
	}
	s.Stop()
	s.onBack()
}

// Deny declines the request; the device is told no.
func (s *ConfirmScreen) Deny() {
	if s.submit.running() {
		return
	}
	s.run(func(ctx context.Context) error {
		return s.svc.Deny(ctx, s.code)
	}, func() {
		s.finish(ConfirmResult{Request: s.req})
	}, s.Deny)
}

func (s *ConfirmScreen) run(work func(ctx context.Context) error, ok func(), retry func()) {
	s.banner.hide()
	s.setBusy(true)
	s.submit.start(work, func(err error) {
		s.setBusy(false)
		if err == nil {
			ok()
			return
		}
		if p, isProblem := problemOf(err); isProblem {
			switch p.Code {
			case devices.CodeInvalidCode, devices.CodeExpiredCode, devices.CodeAlreadyUsed:
				s.Stop()
				if s.onError != nil {
					s.onError(err)
				}
				return
			case devices.CodeConfirmationRequired:
				s.askTick()
				s.banner.show(Explain(err), nil)
				return
			}
		}
		s.banner.show(Explain(err), retry)
	})
}

func (s *ConfirmScreen) finish(r ConfirmResult) {
	s.Stop()
	if s.onDone != nil {
		s.onDone(r)
	}
}

func (s *ConfirmScreen) setBusy(busy bool) {
	s.busy = busy
	if busy {
		s.deny.Disable()
	} else {
		s.deny.Enable()
	}
	s.updateApprove()
	s.progress.set(busy)
	s.body.Refresh()
	s.banner.relayout()
}

// confirmColumn is the widest the confirm screen's details get (see limitWidth).
const confirmColumn = 560

// fullText is the whole of a device's labels, for when a one-line label cuts them.
type fullText string

// fullLabels is the device's name and model in full, one a line, for those of
// title and model that would be cut even at the screen's widest; "" when both fit.
func fullLabels(l deviceLabel, title, model *widget.Label) fullText {
	// The room beside the kind icon, inside the card, at the screen's widest.
	room := float32(confirmColumn) - theme.IconInlineSize()*3 - 8*theme.Padding()
	fits := func(w *widget.Label) bool {
		size := theme.Size(w.SizeName)
		if w.SizeName == "" {
			size = theme.TextSize()
		}
		return fyne.MeasureText(w.Text, size, w.TextStyle).Width <= room
	}
	var lines []string
	if !fits(title) {
		lines = append(lines, lang.L("Name: {{.Name}}", map[string]any{"Name": l.title()}))
	}
	if !fits(model) {
		lines = append(lines, lang.L("Model: {{.Model}}", map[string]any{"Model": l.Model}))
	}
	return fullText(strings.Join(lines, "\n"))
}

// widget is the full text as a small label that wraps anywhere, so a long word
// fills its lines rather than starting a new one.
func (f fullText) widget() *widget.Label {
	l := widget.NewLabel(string(f))
	l.Wrapping = fyne.TextWrapBreak
	l.SizeName = theme.SizeNameCaptionText
	return l
}

// resultScreen is the final screen after approving or declining, and its
// "Link another device" button (which gets the keyboard focus: Enter or Space
// goes back to the code field, which is harmless if pressed by mistake; a
// typed character goes there too, to onRune).
func resultScreen(r ConfirmResult, account devices.Me, again func(), onRune func(rune)) (fyne.CanvasObject, *focusButton) {
	var icon fyne.Resource
	var title, text string
	name := r.Request.Device.Name
	if r.Approved && r.Device.Name != "" {
		name = r.Device.Name
	}
	if r.Approved {
		icon = theme.NewSuccessThemedResource(theme.ConfirmIcon())
		title = lang.L("Device linked")
		if name == "" {
			text = lang.L("The device is now linked to {{.Account}}. It will finish signing in on its own within a few seconds. "+
				"You can unlink it at any time under Linked devices.", map[string]any{"Account": accountName(account)})
		} else {
			text = lang.L("{{.Device}} is now linked to {{.Account}}. It will finish signing in on its own within a few seconds. "+
				"You can unlink it at any time under Linked devices.", map[string]any{"Device": name, "Account": accountName(account)})
		}
	} else {
		icon = theme.NewErrorThemedResource(theme.CancelIcon())
		title = lang.L("Request declined")
		if name == "" {
			text = lang.L("The device was not linked. It will show that the request was declined.")
		} else {
			text = lang.L("{{.Device}} was not linked. It will show that the request was declined.", map[string]any{"Device": name})
		}
	}
	img := container.NewGridWrap(fyne.NewSquareSize(theme.IconInlineSize()*4), widget.NewIcon(icon))
	btn := newFocusButton(lang.L("Link another device"), theme.ContentAddIcon(), again)
	btn.Importance = widget.HighImportance
	btn.onRune = onRune
	msg := wrapped(text)
	msg.Alignment = fyne.TextAlignCenter
	return centered(480,
		container.NewCenter(img),
		container.NewCenter(heading(title)),
		msg,
		container.NewCenter(btn.object()),
	), btn
}

// originLine words where a request came from, as devices.Origin.Line does in
// English: "Requested from Lisbon, Portugal (203.0.113.7) — not your network".
func originLine(o devices.Origin) string {
	where := lang.L("an unknown address")
	switch p := o.Place.String(); {
	case p != "" && o.IP != "":
		where = p + " (" + o.IP + ")"
	case p != "":
		where = p
	case o.IP != "":
		where = o.IP
	}
	if o.SameNetwork {
		return lang.L("Requested from {{.Where}} — your network", map[string]any{"Where": where})
	}
	return lang.L("Requested from {{.Where}} — not your network", map[string]any{"Where": where})
}
