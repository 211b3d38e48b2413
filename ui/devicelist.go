package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// DevicesScreen lists the account's linked devices (a widget.List, so it scales
// to thousands), filters them, shows one's details, renames and unlinks, and
// follows the events stream for live changes.
type DevicesScreen struct {
	svc      DeviceService
	window   fyne.Window
	onLinked func(devices.Device)
	now      func() time.Time

	all      []devices.Device
	shown    []devices.Device
	selected string

	search    *widget.Entry
	list      *widget.List
	empty     fyne.CanvasObject
	noMatch   *widget.Label
	detail    *fyne.Container
	progress  busyBar
	banner    *banner
	unlinkAll *widget.Button
	root      fyne.CanvasObject

	load   task
	action task
	events task
}

// NewDevicesScreen makes the linked-devices screen; w hosts its dialogs and
// onLinked (optional) hears of devices linked elsewhere, for a notification.
func NewDevicesScreen(svc DeviceService, w fyne.Window, onLinked func(devices.Device)) *DevicesScreen {
	s := &DevicesScreen{svc: svc, window: w, onLinked: onLinked, now: time.Now}

	s.search = widget.NewEntry()
	s.search.PlaceHolder = "Search by name, app or model"
	s.search.ActionItem = widget.NewIcon(theme.SearchIcon())
	s.search.OnChanged = func(string) { s.applyFilter() }

	s.list = widget.NewList(
		func() int { return len(s.shown) },
		s.newRow,
		func(id widget.ListItemID, o fyne.CanvasObject) { s.updateRow(id, o) },
	)
	s.list.OnSelected = func(id widget.ListItemID) {
		if id >= 0 && id < len(s.shown) {
			s.selected = s.shown[id].ID
			s.showDetail()
		}
	}

	emptyText := wrapped("To link a TV, console or kiosk, open its sign-in screen: it shows a short code. " +
		"Enter that code under “Link a device”, check what is asking, and choose Link device.")
	emptyText.Alignment = fyne.TextAlignCenter
	s.empty = centered(420,
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(theme.IconInlineSize()*3), widget.NewIcon(theme.InfoIcon()))),
		container.NewCenter(subheading("No linked devices yet")),
		emptyText,
	)
	s.empty.Hide()
	s.noMatch = widget.NewLabelWithStyle("No devices match your search.", fyne.TextAlignCenter, fyne.TextStyle{Italic: true})
	s.noMatch.Hide()

	s.detail = container.NewStack()
	s.progress = newBusyBar()
	s.banner = newBanner()

	var top *fyne.Container
	refresh := widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), s.Reload)
	s.unlinkAll = widget.NewButtonWithIcon("Unlink all", theme.DeleteIcon(), s.confirmUnlinkAll)
	s.unlinkAll.Importance = widget.DangerImportance
	s.unlinkAll.Disable()

	top = container.NewVBox(s.banner.root,
		container.NewBorder(nil, nil, nil, container.NewHBox(refresh, s.unlinkAll), s.search),
		s.progress)
	listArea := container.NewStack(s.list, s.empty, container.NewCenter(s.noMatch))
	split := container.NewHSplit(listArea, container.NewPadded(s.detail))
	split.Offset = 0.55
	root := container.NewBorder(top, nil, nil, nil, split)
	s.banner.parent = root
	s.root = root
	s.showDetail()
	return s
}

// Content is the screen's canvas object.
func (s *DevicesScreen) Content() fyne.CanvasObject { return s.root }

func (s *DevicesScreen) newRow() fyne.CanvasObject {
	icon := widget.NewIcon(theme.DesktopIcon())
	name := widget.NewLabelWithStyle("Device name", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	name.Truncation = fyne.TextTruncateEllipsis
	info := widget.NewLabel("App · linked")
	info.Truncation = fyne.TextTruncateEllipsis
	info.SizeName = theme.SizeNameCaptionText
	return container.NewBorder(nil, nil, icon, nil,
		container.New(layout.NewCustomPaddedVBoxLayout(0), name, info))
}

func (s *DevicesScreen) updateRow(id widget.ListItemID, o fyne.CanvasObject) {
	if id < 0 || id >= len(s.shown) {
		return
	}
	d := s.shown[id]
	row := o.(*fyne.Container)
	texts := row.Objects[0].(*fyne.Container)
	texts.Objects[0].(*widget.Label).SetText(linkedLabel(d).title())
	texts.Objects[1].(*widget.Label).SetText(s.summary(d))
	row.Objects[1].(*widget.Icon).SetResource(kindIcon(d.Kind))
}

func (s *DevicesScreen) summary(d devices.Device) string {
	parts := []string{clientName(d.Client), "linked " + d.LinkedAt.Local().Format("2 Jan 2006")}
	parts = append(parts, "last seen "+s.lastSeen(d))
	return strings.Join(parts, " · ")
}

func (s *DevicesScreen) lastSeen(d devices.Device) string {
	if d.LastSeenAt == nil || d.LastSeenAt.IsZero() {
		return "never"
	}
	return ago(s.now().Sub(*d.LastSeenAt))
}

// ago words an elapsed time like "5 minutes ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	default:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

// Reload fetches the device list and (re)starts following the events stream.
func (s *DevicesScreen) Reload() {
	s.setBusy(true)
	s.fetch(func() { s.setBusy(false) }, s.followEvents)
}

// fetch loads the list off the UI goroutine; done runs first whatever happened, then
// the list is shown and loaded runs, or the error is shown with Retry.
func (s *DevicesScreen) fetch(done, loaded func()) {
	var list []devices.Device
	s.load.start(func(ctx context.Context) error {
		var err error
		list, err = s.svc.Devices(ctx)
		return err
	}, func(err error) {
		done()
		if err != nil {
			s.banner.show(Explain(err), s.Reload)
			return
		}
		s.setAll(list)
		loaded()
	})
}

// Stop ends the events stream and pending work (on sign-out or account switch).
func (s *DevicesScreen) Stop() {
	s.load.stop()
	s.action.stop()
	s.events.stop()
}

// Clear forgets the shown devices, for another account.
func (s *DevicesScreen) Clear() {
	s.Stop()
	s.selected = ""
	s.setAll(nil)
	s.empty.Hide()
}

func (s *DevicesScreen) followEvents() {
	s.events.start(func(ctx context.Context) error {
		ch, err := s.svc.Events(ctx)
		if err != nil {
			return err
		}
		for ev := range ch {
			doUI(func() {
				if ctx.Err() == nil {
					s.apply(ev)
				}
			})
		}
		return ctx.Err()
	}, func(err error) {
		// The stream ended: say so quietly and offer a refresh, which restarts it.
		s.banner.show("Live updates stopped. Refresh to see the latest devices.", s.Reload)
	})
}

// apply folds one event into the list.
func (s *DevicesScreen) apply(ev devices.Event) {
	i := slices.IndexFunc(s.all, func(d devices.Device) bool { return d.ID == ev.Device.ID })
	switch ev.Type {
	case devices.EventLinked:
		if i >= 0 {
			s.all[i] = ev.Device
		} else {
			s.all = append([]devices.Device{ev.Device}, s.all...)
		}
		if s.onLinked != nil {
			s.onLinked(ev.Device)
		}
	case devices.EventRenamed:
		if i >= 0 {
			s.all[i] = ev.Device
		}
	case devices.EventUnlinked:
		if i >= 0 {
			s.all = slices.Delete(s.all, i, i+1)
		}
	case devices.EventResync:
		// The stream reconnected and may have missed events: load the list again,
		// keeping the stream that is already running.
		s.fetch(func() {}, func() {})
		return
	default:
		return
	}
	s.applyFilter()
}

func (s *DevicesScreen) setAll(list []devices.Device) {
	s.all = slices.Clone(list)
	s.applyFilter()
}

func (s *DevicesScreen) applyFilter() {
	q := strings.ToLower(strings.TrimSpace(s.search.Text))
	s.shown = s.shown[:0:0]
	for _, d := range s.all {
		if q == "" || strings.Contains(strings.ToLower(linkedLabel(d).title()+" "+clientName(d.Client)+" "+d.Model+" "+kindName(d.Kind)), q) {
			s.shown = append(s.shown, d)
		}
	}
	if len(s.all) == 0 {
		s.empty.Show()
		s.list.Hide()
		s.unlinkAll.Disable()
	} else {
		s.empty.Hide()
		s.list.Show()
		s.unlinkAll.Enable()
	}
	if len(s.all) > 0 && len(s.shown) == 0 {
		s.noMatch.Show()
	} else {
		s.noMatch.Hide()
	}
	s.list.UnselectAll()
	s.list.Refresh()
	if i := slices.IndexFunc(s.shown, func(d devices.Device) bool { return d.ID == s.selected }); i >= 0 {
		s.list.Select(i)
	} else {
		s.selected = ""
	}
	s.showDetail()
}

func (s *DevicesScreen) selectedDevice() (devices.Device, bool) {
	i := slices.IndexFunc(s.all, func(d devices.Device) bool { return d.ID == s.selected })
	if i < 0 {
		return devices.Device{}, false
	}
	return s.all[i], true
}

func (s *DevicesScreen) showDetail() {
	d, ok := s.selectedDevice()
	if !ok {
		s.detail.Objects = []fyne.CanvasObject{container.NewCenter(
			widget.NewLabelWithStyle("Select a device to see its details.", fyne.TextAlignCenter, fyne.TextStyle{Italic: true}))}
		s.detail.Refresh()
		return
	}
	perms := make([]string, 0, len(d.Scopes))
	for _, sc := range d.Scopes {
		perms = append(perms, "• "+scopeText(sc))
	}
	if len(perms) == 0 {
		perms = append(perms, "• Sign in to your account")
	}
	rename := widget.NewButtonWithIcon("Rename", theme.DocumentCreateIcon(), func() { s.confirmRename(d) })
	unlink := widget.NewButtonWithIcon("Unlink", theme.DeleteIcon(), func() { s.confirmUnlink(d) })
	unlink.Importance = widget.DangerImportance
	lastIP := d.LastIP
	if lastIP == "" {
		lastIP = "—"
	}
	s.detail.Objects = []fyne.CanvasObject{container.NewVScroll(container.NewVBox(
		container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSquareSize(theme.IconInlineSize()*2), widget.NewIcon(kindIcon(d.Kind))), nil,
			subheading(linkedLabel(d).title())),
		widget.NewForm(
			widget.NewFormItem("Device", widget.NewLabel(linkedLabel(d).model())),
			widget.NewFormItem("App", widget.NewLabel(clientName(d.Client))),
			widget.NewFormItem("Linked", widget.NewLabel(d.LinkedAt.Local().Format("2 Jan 2006, 15:04"))),
			widget.NewFormItem("Last seen", widget.NewLabel(s.lastSeen(d))),
			widget.NewFormItem("Last address", widget.NewLabel(lastIP)),
		),
		widget.NewLabelWithStyle("Can:", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		wrapped(strings.Join(perms, "\n")),
		container.NewHBox(rename, unlink),
	))}
	s.detail.Refresh()
}

func (s *DevicesScreen) confirmRename(d devices.Device) {
	entry := newEscEntry(s.window)
	entry.SetText(d.Name)
	entry.Validator = func(v string) error {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("enter a name")
		}
		return nil
	}
	dlg := dialog.NewForm("Rename device", "Rename", "Cancel",
		[]*widget.FormItem{widget.NewFormItem("Name", entry)}, func(ok bool) {
			if !ok {
				return
			}
			name := strings.TrimSpace(entry.Text)
			var updated devices.Device
			s.runAction(func(ctx context.Context) error {
				var err error
				updated, err = s.svc.Rename(ctx, d.ID, name)
				return err
			}, func() {
				if i := slices.IndexFunc(s.all, func(x devices.Device) bool { return x.ID == d.ID }); i >= 0 {
					if updated.ID == "" {
						updated = s.all[i]
						updated.Name = name
					}
					s.all[i] = updated
				}
				s.applyFilter()
			})
		}, s.window)
	dlg.Resize(fyne.NewSize(400, dlg.MinSize().Height))
	showDialog(s.window, dlg)
	s.window.Canvas().Focus(entry)
}

func (s *DevicesScreen) confirmUnlink(d devices.Device) {
	dlg := dialog.NewConfirm("Unlink "+linkedLabel(d).title()+"?",
		"It will be signed out at once and will need a new code to link again.",
		func(ok bool) {
			if !ok {
				return
			}
			s.runAction(func(ctx context.Context) error {
				return s.svc.Unlink(ctx, d.ID)
			}, func() { s.removeIDs(d.ID) })
		}, s.window)
	dlg.SetConfirmText("Unlink")
	dlg.SetConfirmImportance(widget.DangerImportance)
	showDialog(s.window, dlg)
}

func (s *DevicesScreen) confirmUnlinkAll() {
	ids := make([]string, 0, len(s.all))
	for _, d := range s.all {
		ids = append(ids, d.ID)
	}
	if len(ids) == 0 {
		return
	}
	dlg := dialog.NewConfirm(fmt.Sprintf("Unlink all %s?", plural(len(ids), "device")),
		"Every linked device will be signed out at once and will need a new code to link again.",
		func(ok bool) {
			if !ok {
				return
			}
			var done []string
			s.runAction(func(ctx context.Context) error {
				for _, id := range ids {
					if err := s.svc.Unlink(ctx, id); err != nil {
						doUI(func() { s.removeIDs(done...) })
						return err
					}
					done = append(done, id)
				}
				return nil
			}, func() { s.removeIDs(ids...) })
		}, s.window)
	dlg.SetConfirmText("Unlink all")
	dlg.SetConfirmImportance(widget.DangerImportance)
	showDialog(s.window, dlg)
}

func (s *DevicesScreen) removeIDs(ids ...string) {
	s.all = slices.DeleteFunc(s.all, func(d devices.Device) bool { return slices.Contains(ids, d.ID) })
	s.applyFilter()
}

func (s *DevicesScreen) runAction(work func(ctx context.Context) error, ok func()) {
	s.setBusy(true)
	s.action.start(work, func(err error) {
		s.setBusy(false)
		if err != nil {
			// Retry repeats the same change, so a rename typed before going
			// offline is not lost.
			s.banner.show(Explain(err), func() { s.runAction(work, ok) })
			return
		}
		ok()
	})
}

// setBusy shows the progress bar (hiding an old banner) or hides it.
func (s *DevicesScreen) setBusy(on bool) {
	if on {
		s.banner.hide()
	}
	s.progress.set(on)
	s.banner.relayout()
}
