package ui

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// New-link notices: when a device is linked to the account from anywhere but this
// window, the app says so at once (a desktop notification and a banner under the
// header, on whichever screen is on show), with a one-click "Not you? Unlink". The
// account's one event stream is the devices screen's (see DevicesScreen.apply); it
// hands each device.linked event here.

// maxNoticeCards is how many notices are shown at once; more are summed up in one
// line, so a burst of links never pushes the screen below out of the window.
const maxNoticeCards = 1

// linkNotices is the strip of new-link notices under the app's header.
type linkNotices struct {
	svc DeviceService
	// unlinked hears of a device the banner unlinked, so the other screens drop it.
	unlinked func(id string)
	// relayout refreshes the screen around the strip after it changed height.
	relayout func()
	// onShown hears of each notice shown (the app sends its desktop notification).
	onShown func(devices.Device)
	now     func() time.Time

	own   *ownLinks
	held  []devices.Device // linked while an approval of this window was under way
	cards []*noticeCard    // newest first
	root  *fyne.Container
	more  *fyne.Container
	moreN *widget.Label
}

func newLinkNotices(svc DeviceService, own *ownLinks) *linkNotices {
	n := &linkNotices{svc: svc, own: own, now: time.Now}
	n.moreN = widget.NewLabel("")
	n.moreN.Truncation = fyne.TextTruncateEllipsis
	n.more = container.NewBorder(nil, nil, nil,
		widget.NewButtonWithIcon(lang.L("Dismiss all"), theme.CancelIcon(), n.dismissAll), n.moreN)
	n.root = container.NewVBox()
	n.root.Hide()
	own.settled = func() { doUI(n.release) }
	return n
}

// linked takes a device.linked event: a link this window made is not announced;
// one that arrives while this window's approval is under way waits for its answer
// (the event may come first) to tell which it is.
func (n *linkNotices) linked(d devices.Device) {
	if n.own.made(d.ID) || n.has(d.ID) {
		return
	}
	if n.own.approving() {
		n.held = append(n.held, d)
		return
	}
	n.add(d)
}

// release shows the held notices of links this window did not make, once its
// approvals have their answers.
func (n *linkNotices) release() {
	if n.own.approving() {
		return
	}
	held := n.held
	n.held = nil
	for _, d := range held {
		if !n.own.made(d.ID) && !n.has(d.ID) {
			n.add(d)
		}
	}
}

func (n *linkNotices) has(id string) bool {
	return slices.ContainsFunc(n.cards, func(c *noticeCard) bool { return c.dev.ID == id })
}

// gone follows a device unlinked anywhere: its notice says so.
func (n *linkNotices) gone(id string) {
	for _, c := range n.cards {
		if c.dev.ID == id {
			c.setUnlinked()
		}
	}
}

// clear drops every notice, for another account or after sign-out.
func (n *linkNotices) clear() {
	for _, c := range n.cards {
		c.work.stop()
	}
	n.cards, n.held = nil, nil
	n.layout()
}

// add shows d's notice and tells onShown.
func (n *linkNotices) add(d devices.Device) {
	n.cards = append([]*noticeCard{newNoticeCard(n, d)}, n.cards...)
	n.layout()
	if n.onShown != nil {
		n.onShown(d)
	}
}

func (n *linkNotices) dismiss(c *noticeCard) {
	c.work.stop()
	n.cards = slices.DeleteFunc(n.cards, func(x *noticeCard) bool { return x == c })
	n.layout()
}

func (n *linkNotices) dismissAll() {
	for _, c := range n.cards {
		c.work.stop()
	}
	n.cards = nil
	n.layout()
}

// layout shows the newest cards and sums up the rest.
func (n *linkNotices) layout() {
	objs := make([]fyne.CanvasObject, 0, maxNoticeCards+1)
	for i, c := range n.cards {
		if i == maxNoticeCards {
			break
		}
		objs = append(objs, c.root)
	}
	if extra := len(n.cards) - maxNoticeCards; extra > 0 {
		n.moreN.SetText(lang.N("{{.Count}} more new links — see Linked devices", extra, map[string]any{"Count": extra}))
		objs = append(objs, n.more)
	}
	n.root.Objects = objs
	if len(objs) == 0 {
		n.root.Hide()
	} else {
		n.root.Show()
	}
	n.root.Refresh()
	if n.relayout != nil {
		n.relayout()
	}
}

// noticeCard is one new link's notice.
type noticeCard struct {
	n        *linkNotices
	dev      devices.Device
	root     *fyne.Container
	title    *widget.Label
	detail   *widget.Label
	unlink   *widget.Button
	dismissB *widget.Button
	progress busyBar
	stripe   *canvas.Rectangle
	icon     *widget.Icon
	work     task
	done     bool
}

func newNoticeCard(n *linkNotices, d devices.Device) *noticeCard {
	c := &noticeCard{n: n, dev: d}
	c.title = widget.NewLabelWithStyle(lang.L("New device linked: {{.Device}}", map[string]any{"Device": linkedLabel(d).title()}), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	c.title.Truncation = fyne.TextTruncateEllipsis
	c.detail = widget.NewLabel(noticeDetail(d, n.now()))
	c.detail.Truncation = fyne.TextTruncateEllipsis
	c.detail.SizeName = theme.SizeNameCaptionText
	c.unlink = widget.NewButtonWithIcon(lang.L("Not you? Unlink"), theme.DeleteIcon(), c.doUnlink)
	c.unlink.Importance = widget.DangerImportance
	c.dismissB = widget.NewButtonWithIcon(lang.L("Dismiss"), theme.CancelIcon(), func() { n.dismiss(c) })
	c.dismissB.Importance = widget.LowImportance
	c.progress = newBusyBar()
	// A quiet card with a coloured edge: it stands out from the screen without
	// shouting over it.
	bg := canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground))
	bg.CornerRadius = theme.InputRadiusSize()
	c.stripe = canvas.NewRectangle(theme.Color(theme.ColorNameWarning))
	c.stripe.SetMinSize(fyne.NewSize(4, 0))
	c.icon = widget.NewIcon(theme.NewWarningThemedResource(theme.WarningIcon()))
	texts := container.New(layout.NewCustomPaddedVBoxLayout(-theme.Padding()), c.title, c.detail)
	buttons := container.NewHBox(c.unlink, c.dismissB)
	c.root = container.NewStack(bg, container.NewBorder(nil, nil, c.stripe, nil, container.NewPadded(container.NewVBox(
		container.NewBorder(nil, nil, container.NewCenter(c.icon), container.NewCenter(buttons), texts),
		c.progress))))
	return c
}

// noticeDetail says where and when: "Demo TV · from 203.0.113.7 · today 14:05".
func noticeDetail(d devices.Device, now time.Time) string {
	s := clientName(d.Client)
	switch place := d.RequestPlace.String(); {
	case d.RequestIP != "" && place != "":
		s += " · " + lang.L("from {{.Place}} ({{.Address}})", map[string]any{"Place": place, "Address": d.RequestIP})
	case d.RequestIP != "":
		s += " · " + lang.L("from {{.Address}}", map[string]any{"Address": d.RequestIP})
	}
	if !d.LinkedAt.IsZero() {
		at := d.LinkedAt.Local()
		y1, m1, d1 := at.Date()
		y2, m2, d2 := now.Local().Date()
		if y1 == y2 && m1 == m2 && d1 == d2 {
			s += " · " + lang.L("today {{.Time}}", map[string]any{"Time": at.Format("15:04")})
		} else {
			s += " · " + at.Format(lang.X("layout.datetime", "2 Jan 2006, 15:04"))
		}
	}
	return s
}

// doUnlink unlinks the device through the same service call and list update as
// the devices screen's Unlink, showing progress in the card and, on failure, why
// in plain words (the button then tries again).
func (c *noticeCard) doUnlink() {
	if c.done || c.work.running() {
		return
	}
	c.unlink.Disable()
	c.dismissB.Disable()
	c.progress.set(true)
	c.detail.Importance = widget.MediumImportance
	c.detail.SetText(lang.L("Unlinking {{.Device}}…", map[string]any{"Device": linkedLabel(c.dev).shortTitle()}))
	c.relayout()
	id := c.dev.ID
	c.work.start(func(ctx context.Context) error {
		return c.n.svc.Unlink(ctx, id)
	}, func(err error) {
		c.progress.set(false)
		c.dismissB.Enable()
		var apiErr *devices.APIError
		if err != nil && !(errors.As(err, &apiErr) && apiErr.Code == devices.CodeNotFound) {
			c.unlink.Enable()
			c.unlink.SetText(lang.L("Try again to unlink"))
			c.detail.Importance = widget.DangerImportance
			c.detail.SetText(Explain(err))
			c.relayout()
			return
		}
		// Unlinked now, or already (from another screen): either way it is gone.
		c.setUnlinked()
		if c.n.unlinked != nil {
			c.n.unlinked(id)
		}
	})
}

// setUnlinked says the device is no longer linked; only Dismiss stays.
func (c *noticeCard) setUnlinked() {
	if c.done {
		return
	}
	c.done = true
	c.work.stop()
	c.progress.set(false)
	c.unlink.Hide()
	c.dismissB.Enable()
	c.title.SetText(lang.L("Unlinked: {{.Device}}", map[string]any{"Device": linkedLabel(c.dev).title()}))
	c.detail.Importance = widget.MediumImportance
	c.detail.SetText(lang.L("It is signed out and needs a new code to link again."))
	c.stripe.FillColor = theme.Color(theme.ColorNameSuccess)
	c.stripe.Refresh()
	c.icon.SetResource(theme.NewSuccessThemedResource(theme.ConfirmIcon()))
	c.relayout()
}

func (c *noticeCard) relayout() {
	c.root.Refresh()
	if c.n.relayout != nil {
		c.n.relayout()
	}
}

// ownLinks wraps the app's LinkService to know which links this window made, and
// whether an approval is under way, so their device.linked events are not announced
// to the person who just made them. It is safe for concurrent use.
type ownLinks struct {
	LinkService
	mu       sync.Mutex
	inFlight int
	ids      map[string]bool
	// settled, when set, is called (off the UI goroutine) after each approval ends.
	settled func()
}

func newOwnLinks(svc LinkService) *ownLinks {
	return &ownLinks{LinkService: svc, ids: map[string]bool{}}
}

// ApproveWith passes through, remembering the linked device's id.
func (o *ownLinks) ApproveWith(ctx context.Context, code string, a devices.ApproveRequest) (devices.Device, error) {
	o.mu.Lock()
	o.inFlight++
	o.mu.Unlock()
	d, err := o.LinkService.ApproveWith(ctx, code, a)
	o.mu.Lock()
	o.inFlight--
	if err == nil && d.ID != "" {
		o.ids[d.ID] = true
	}
	settled := o.settled
	o.mu.Unlock()
	if settled != nil {
		settled()
	}
	return d, err
}

func (o *ownLinks) made(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ids[id]
}

func (o *ownLinks) approving() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inFlight > 0
}
