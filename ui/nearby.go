package ui

import (
	"context"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/lang"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// NearbyService is what the code screen's "Devices waiting near you" needs
// (devices.Client has it): the pending requests from this computer's network,
// without their codes; three codes to pick from for one; and the pick. A
// LinkService that also implements it gets the section.
type NearbyService interface {
	Nearby(ctx context.Context) ([]devices.NearbyRequest, error)
	NearbyChoices(ctx context.Context, id string) ([]string, error)
	PickNearby(ctx context.Context, id, code string) (devices.LinkRequest, error)
}

// nearbyRefresh is how often the list is read again while the code screen is on show.
const nearbyRefresh = 10 * time.Second

// nearbySection lists the devices waiting near the person. Picking one asks which of
// three codes the device shows; a right pick hands the request to onPicked (the usual
// confirm screen), a wrong one ends the request and says so plainly.
type nearbySection struct {
	svc      NearbyService
	onPicked func(code string, req devices.LinkRequest)
	now      func() time.Time

	root     *fyne.Container
	status   *widget.Label
	progress busyBar
	list     *fyne.Container // one row per waiting device
	choice   *fyne.Container // the three-code step, replacing the list
	relayout func()

	load, pick task
	items      []devices.NearbyRequest
	picking    *devices.NearbyRequest // the device on the three-code step, or nil
	off        bool                   // the service has the list turned off

	tickMu   sync.Mutex
	stopTick func()
}

func newNearbySection(svc NearbyService, onPicked func(string, devices.LinkRequest), relayout func()) *nearbySection {
	n := &nearbySection{svc: svc, onPicked: onPicked, now: time.Now, relayout: relayout}
	n.status = wrapped("")
	n.status.Hide()
	n.progress = newBusyBar()
	n.list = container.NewVBox()
	n.choice = container.NewVBox()
	n.choice.Hide()
	n.root = container.NewVBox(
		widget.NewSeparator(),
		subheading(lang.L("Devices waiting near you")),
		wrapped(lang.L("Devices on your network that are asking to be linked now. Pick yours, then check its code.")),
		n.progress,
		n.status,
		n.list,
		n.choice,
	)
	return n
}

// start reads the list now and again every nearbyRefresh until stop.
func (n *nearbySection) start() {
	n.reload()
	n.tickMu.Lock()
	defer n.tickMu.Unlock()
	if n.stopTick != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(nearbyRefresh)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				doUI(func() {
					select {
					case <-done:
					default:
						n.reload()
					}
				})
			}
		}
	}()
	var once sync.Once
	n.stopTick = func() { once.Do(func() { close(done) }) }
}

// stop ends the refreshing and any call in flight.
func (n *nearbySection) stop() {
	n.tickMu.Lock()
	if n.stopTick != nil {
		n.stopTick()
		n.stopTick = nil
	}
	n.tickMu.Unlock()
	n.load.stop()
	n.pick.stop()
	n.progress.set(false)
}

// reset forgets the list and any pick in progress (another account, sign-out).
func (n *nearbySection) reset() {
	n.stop()
	n.items, n.picking = nil, nil
	n.showStatus("", false)
	n.renderList()
}

// reload reads the list, unless the person is on the three-code step.
func (n *nearbySection) reload() {
	if n.off || n.picking != nil || n.load.running() {
		return
	}
	n.busy(true)
	var items []devices.NearbyRequest
	n.load.start(func(ctx context.Context) error {
		var err error
		items, err = n.svc.Nearby(ctx)
		return err
	}, func(err error) {
		n.busy(false)
		if err != nil {
			if p, ok := problemOf(err); ok && p.Code == devices.CodeNearbyOff {
				n.off = true
				n.root.Hide()
				n.relayout()
				return
			}
			n.showStatus(lang.L("Couldn't check for devices waiting near you. {{.Reason}}", map[string]any{"Reason": Explain(err)}), true)
			return
		}
		n.items = items
		if len(items) == 0 {
			n.showStatus(lang.L("No device on your network is waiting. Start linking on the device; it shows up here."), false)
		} else {
			n.showStatus("", false)
		}
		n.renderList()
	})
}

func (n *nearbySection) busy(on bool) {
	n.progress.set(on)
	n.relayout()
}

// showStatus shows msg under the heading (as an error when bad); "" hides it.
func (n *nearbySection) showStatus(msg string, bad bool) {
	n.status.SetText(msg)
	n.status.Importance = widget.MediumImportance
	if bad {
		n.status.Importance = widget.DangerImportance
	}
	if msg == "" {
		n.status.Hide()
	} else {
		n.status.Show()
	}
	n.status.Refresh()
	n.relayout()
}

// renderList shows one row per waiting device: its kind's icon, name, kind, model,
// app and age, and a Pick button (reachable with Tab, pressed with Space or Enter).
func (n *nearbySection) renderList() {
	n.choice.Hide()
	n.list.Objects = nil
	for i := range n.items {
		r := n.items[i]
		l := deviceLabel(r.Device)
		name := widget.NewLabelWithStyle(l.title(), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		name.Truncation = fyne.TextTruncateEllipsis
		facts := widget.NewLabel(l.model() + " · " + clientName(r.Client) + " · " + ago(n.now().Sub(r.RequestedAt)))
		facts.Truncation = fyne.TextTruncateEllipsis
		facts.Importance = widget.LowImportance
		btn := newFocusButton(lang.L("Pick"), theme.NavigateNextIcon(), func() { n.choose(r) })
		row := container.NewBorder(nil, nil, widget.NewIcon(kindIcon(r.Device.Kind)), container.NewCenter(btn.object()),
			container.NewVBox(name, facts))
		n.list.Add(row)
	}
	n.list.Show()
	n.list.Refresh()
	n.relayout()
}

// choose goes to the three-code step for r.
func (n *nearbySection) choose(r devices.NearbyRequest) {
	if n.pick.running() {
		return
	}
	n.load.stop()
	n.picking = &r
	n.showStatus("", false)
	n.busy(true)
	var codes []string
	n.pick.start(func(ctx context.Context) error {
		var err error
		codes, err = n.svc.NearbyChoices(ctx, r.ID)
		return err
	}, func(err error) {
		n.busy(false)
		if err != nil {
			n.backToList(Explain(err), true)
			return
		}
		n.renderChoices(r, codes)
	})
}

// renderChoices shows the three codes as big buttons and a way back. The focus goes
// to the way back, so a stray Enter never picks a code.
func (n *nearbySection) renderChoices(r devices.NearbyRequest, codes []string) {
	n.list.Hide()
	n.choice.Objects = nil
	title := labelHeading(lang.L("Which code does {{.Device}} show?", map[string]any{"Device": deviceLabel(r.Device).title()}))
	n.choice.Add(title)
	n.choice.Add(wrapped(lang.L("Look at the device's screen and pick the same code. A wrong pick ends its request, " +
		"so nobody can link a device that isn't in front of them.")))
	for _, c := range codes {
		b := newFocusButton(c, nil, func() { n.pickCode(r, c) })
		n.choice.Add(container.NewThemeOverride(b.object(), bigTextTheme{theme.Current()}))
	}
	back := newFocusButton(lang.L("None of these"), theme.NavigateBackIcon(), func() { n.backToList("", false) })
	n.choice.Add(container.NewHBox(back.object()))
	n.choice.Show()
	n.choice.Refresh()
	n.relayout()
	if c := fyne.CurrentApp().Driver().CanvasForObject(n.root); c != nil {
		c.Focus(back)
	}
}

// pickCode tells the service which code the person saw.
func (n *nearbySection) pickCode(r devices.NearbyRequest, code string) {
	if n.pick.running() {
		return
	}
	n.busy(true)
	var req devices.LinkRequest
	n.pick.start(func(ctx context.Context) error {
		var err error
		req, err = n.svc.PickNearby(ctx, r.ID, code)
		return err
	}, func(err error) {
		n.busy(false)
		if err != nil {
			n.backToList(Explain(err), true)
			return
		}
		n.picking = nil
		n.renderList()
		canon, cerr := devices.NormalizeCode(req.UserCode)
		if cerr != nil {
			canon, _ = devices.NormalizeCode(code)
		}
		if n.onPicked != nil {
			n.onPicked(canon, req)
		}
	})
}

// backToList leaves the three-code step, saying msg, and reads the list again.
func (n *nearbySection) backToList(msg string, bad bool) {
	n.pick.stop()
	n.picking = nil
	n.renderList()
	n.showStatus(msg, bad)
	n.reloadKeepingStatus()
}

// reloadKeepingStatus reads the list again without replacing a message on show.
func (n *nearbySection) reloadKeepingStatus() {
	if n.off || n.load.running() {
		return
	}
	var items []devices.NearbyRequest
	n.load.start(func(ctx context.Context) error {
		var err error
		items, err = n.svc.Nearby(ctx)
		return err
	}, func(err error) {
		if err == nil {
			n.items = items
			n.renderList()
		}
	})
}
