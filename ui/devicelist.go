package ui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/lang"
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
	// OnUnlinked, when set, hears of every device that stopped being linked
	// (unlinked here or elsewhere), so other screens can stop saying it is.
	OnUnlinked func(id string)
	// retryMin is the first wait before loading again by itself after a
	// failure; it doubles up to a minute while the failures last.
	retryMin time.Duration
	retryIn  time.Duration

	all      []devices.Device
	shown    []devices.Device
	selected string

	search    *widget.Entry
	list      *widget.List
	empty     fyne.CanvasObject
	emptyHead *widget.RichText
	emptyText *widget.Label
	hadAny    bool // the list held devices since it was last cleared
	noMatch   *widget.Label
	detail    *fyne.Container
	progress  busyBar
	banner    *banner
	unlinkAll *widget.Button
	tools     *fyne.Container // the search field and buttons
	root      fyne.CanvasObject

	load   task
	action task
	events task
	retry  task // the wait before loading again by itself
}

// NewDevicesScreen makes the linked-devices screen; w hosts its dialogs and
// onLinked (optional) hears of devices linked elsewhere, for a notification.
func NewDevicesScreen(svc DeviceService, w fyne.Window, onLinked func(devices.Device)) *DevicesScreen {
	s := &DevicesScreen{svc: svc, window: w, onLinked: onLinked, now: time.Now, retryMin: time.Second}

	s.search = widget.NewEntry()
	s.search.PlaceHolder = lang.L("Search by name, app or model")
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

	s.emptyText = wrapped(howToLink())
	s.emptyText.Alignment = fyne.TextAlignCenter
	s.emptyHead = subheading(lang.L("No linked devices yet"))
	s.empty = centered(420,
		container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(theme.IconInlineSize()*3), widget.NewIcon(theme.InfoIcon()))),
		container.NewCenter(s.emptyHead),
		s.emptyText,
	)
	s.empty.Hide()
	s.noMatch = widget.NewLabelWithStyle(lang.L("No devices match your search."), fyne.TextAlignCenter, fyne.TextStyle{Italic: true})
	s.noMatch.Hide()

	s.detail = container.NewStack()
	s.progress = newBusyBar()
	s.banner = newBanner()

	var top *fyne.Container
	refresh := widget.NewButtonWithIcon(lang.L("Refresh"), theme.ViewRefreshIcon(), s.Reload)
	s.unlinkAll = widget.NewButtonWithIcon(lang.L("Unlink all"), theme.DeleteIcon(), s.confirmUnlinkAll)
	s.unlinkAll.Importance = widget.DangerImportance
	s.unlinkAll.Disable()

	s.tools = container.NewBorder(nil, nil, nil, container.NewHBox(refresh, s.unlinkAll), s.search)
	top = container.NewVBox(s.banner.root, s.tools, s.progress)
	listArea := container.NewStack(s.list, s.empty, container.NewCenter(s.noMatch))
	split := container.NewHSplit(listArea, container.NewPadded(s.detail))
	split.Offset = 0.55
	root := container.NewBorder(top, nil, nil, nil, split)
	s.banner.parent = root
	s.root = root
	s.showDetail()
	return s
}

// howToLink tells how a device gets linked, for the empty list.
func howToLink() string {
	return lang.L("To link a TV, console or kiosk, open its sign-in screen: it shows a short code. Enter that code under “Link a device”, check what is asking, and choose Link device.")
}

// Content is the screen's canvas object.
func (s *DevicesScreen) Content() fyne.CanvasObject { return s.root }

func (s *DevicesScreen) newRow() fyne.CanvasObject {
	icon := widget.NewIcon(theme.DesktopIcon())
	name := widget.NewLabelWithStyle(lang.L("Device name"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	name.Truncation = fyne.TextTruncateEllipsis
	info := widget.NewLabel(lang.L("App · linked"))
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
	parts := []string{clientName(d.Client), lang.L("linked {{.Date}}", map[string]any{"Date": shortDate(d.LinkedAt)})}
	if d.LastSeenAt == nil || d.LastSeenAt.IsZero() {
		// rather than "last seen never"
		parts = append(parts, lang.L("not used yet"))
	} else {
		parts = append(parts, lang.L("last seen {{.When}}", map[string]any{"When": ago(s.now().Sub(*d.LastSeenAt))}))
	}
	return strings.Join(parts, " · ")
}

// lastSeen words when the device last called the service: "5 minutes ago",
// or "not used yet" for one that has not since it was linked.
func (s *DevicesScreen) lastSeen(d devices.Device) string {
	if d.LastSeenAt == nil || d.LastSeenAt.IsZero() {
		return lang.L("not used yet")
	}
	return ago(s.now().Sub(*d.LastSeenAt))
}

// shortDate is a day in the local time zone, in the language's short form
// (the Go layout is itself translated: "2 Jan 2006", "2.1.2006", …).
func shortDate(t time.Time) string {
	return t.Local().Format(lang.X("layout.date", "2 Jan 2006"))
}

// ago words an elapsed time like "5 minutes ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return lang.L("just now")
	case d < time.Hour:
		n := int(d / time.Minute)
		return lang.N("{{.Count}} minutes ago", n, map[string]any{"Count": n})
	case d < 48*time.Hour:
		n := int(d / time.Hour)
		return lang.N("{{.Count}} hours ago", n, map[string]any{"Count": n})
	default:
		n := int(d / (24 * time.Hour))
		return lang.N("{{.Count}} days ago", n, map[string]any{"Count": n})
	}
}

// Reload fetches the device list and (re)starts following the events stream.
func (s *DevicesScreen) Reload() {
	s.retry.stop()
	s.retryIn = 0
	s.setBusy(true)
	s.fetch(func() { s.setBusy(false) }, s.followEvents)
}

// fetch loads the list off the UI goroutine; done runs first whatever happened, then
// the list is shown and loaded runs, or the error is shown with Retry (and
// the screen tries again by itself, see retryLater).
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
			if !isSignedOut(err) {
				s.retryLater()
			}
			return
		}
		s.retryIn = 0
		s.banner.hide()
		s.setAll(list)
		loaded()
	})
}

// retryLater loads the list and restarts the events stream by itself after a
// wait that doubles from retryMin up to a minute, so the screen recovers when
// the service is back without anyone pressing Retry. The banner stays until
// then.
func (s *DevicesScreen) retryLater() {
	s.retryIn = min(max(2*s.retryIn, s.retryMin), time.Minute)
	wait := s.retryIn
	s.retry.start(func(ctx context.Context) error {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, func(error) {
		s.fetch(func() {}, s.followEvents)
	})
}

// Stop ends the events stream and pending work (on sign-out or account switch).
func (s *DevicesScreen) Stop() {
	s.load.stop()
	s.action.stop()
	s.events.stop()
	s.retry.stop()
	s.retryIn = 0
}

// Clear forgets the shown devices and any error or search, for another
// account: nothing of one account is shown to the next.
func (s *DevicesScreen) Clear() {
	s.Stop()
	s.selected = ""
	s.hadAny = false
	s.progress.set(false)
	s.banner.hide()
	s.search.SetText("")
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
		// The stream ended (the service restarted, or the network went): say
		// so, and load the list again and reconnect by itself after a wait;
		// Retry does it at once.
		msg := lang.L("Live updates stopped. Reconnecting…")
		if err != nil {
			msg = lang.L("{{.Problem}} Reconnecting…", map[string]any{"Problem": Explain(err)})
		}
		s.banner.show(msg, s.Reload)
		s.retryLater()
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
		s.unlinked(ev.Device.ID)
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

func (s *DevicesScreen) unlinked(ids ...string) {
	if s.OnUnlinked != nil {
		for _, id := range ids {
			s.OnUnlinked(id)
		}
	}
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
		if s.hadAny {
			s.setEmptyText(lang.L("No linked devices"), lang.L("You unlinked every device. {{.HowToLink}}", map[string]any{"HowToLink": howToLink()}))
		} else {
			s.setEmptyText(lang.L("No linked devices yet"), howToLink())
		}
		s.empty.Show()
		s.list.Hide()
	} else {
		s.hadAny = true
		s.empty.Hide()
		s.list.Show()
	}
	label := lang.L("Unlink all")
	if q != "" {
		label = lang.L("Unlink these")
	}
	if s.unlinkAll.Text != label {
		s.unlinkAll.SetText(label)
		s.tools.Refresh() // the button's new width
	}
	if len(s.shown) == 0 {
		s.unlinkAll.Disable()
	} else {
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

func (s *DevicesScreen) setEmptyText(head, text string) {
	if s.emptyHead.String() != head {
		s.emptyHead.Segments[0].(*widget.TextSegment).Text = head
		s.emptyHead.Refresh()
	}
	s.emptyText.SetText(text)
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
			widget.NewLabelWithStyle(lang.L("Select a device to see its details."), fyne.TextAlignCenter, fyne.TextStyle{Italic: true}))}
		s.detail.Refresh()
		return
	}
	perms := make([]string, 0, len(d.Scopes))
	for _, sc := range d.Scopes {
		perms = append(perms, "• "+scopeText(sc))
	}
	if len(perms) == 0 {
		perms = append(perms, "• "+lang.L("Sign in to your account"))
	}
	rename := widget.NewButtonWithIcon(lang.L("Rename"), theme.DocumentCreateIcon(), func() { s.confirmRename(d) })
	unlink := widget.NewButtonWithIcon(lang.L("Unlink"), theme.DeleteIcon(), func() { s.confirmUnlink(d) })
	unlink.Importance = widget.DangerImportance
	lastIP := d.LastIP
	if lastIP == "" {
		lastIP = "—"
	}
	s.detail.Objects = []fyne.CanvasObject{container.NewVScroll(container.NewVBox(
		container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSquareSize(theme.IconInlineSize()*2), widget.NewIcon(kindIcon(d.Kind))), nil,
			labelHeading(linkedLabel(d).title())),
		widget.NewForm(
			widget.NewFormItem(lang.L("Device"), wrapped(linkedLabel(d).model())),
			widget.NewFormItem(lang.L("App"), widget.NewLabel(clientName(d.Client))),
			widget.NewFormItem(lang.L("Linked"), widget.NewLabel(d.LinkedAt.Local().Format(lang.X("layout.datetime", "2 Jan 2006, 15:04")))),
			widget.NewFormItem(lang.L("Last seen"), widget.NewLabel(s.lastSeen(d))),
			widget.NewFormItem(lang.L("Last address"), widget.NewLabel(lastIP)),
		),
		widget.NewLabelWithStyle(lang.L("Can:"), fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		wrapped(strings.Join(perms, "\n")),
		container.NewHBox(rename, unlink),
	))}
	s.detail.Refresh()
}

func (s *DevicesScreen) confirmRename(d devices.Device) {
	entry := newEscEntry(s.window)
	var dlg *dialog.FormDialog
	entry.SetText(d.Name)
	entry.Validator = func(v string) error {
		if strings.TrimSpace(v) == "" {
			return errors.New(lang.L("Enter a name"))
		}
		return nil
	}
	dlg = dialog.NewForm(lang.L("Rename device"), lang.L("Rename"), lang.L("Cancel"),
		[]*widget.FormItem{widget.NewFormItem(lang.L("Name"), entry)}, func(ok bool) {
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
	entry.OnSubmitted = func(string) { dlg.Submit() } // Enter renames (when the name is valid)
	dlg.Resize(fyne.NewSize(400, dlg.MinSize().Height))
	showDialog(s.window, dlg)
	s.window.Canvas().Focus(entry)
}

func (s *DevicesScreen) confirmUnlink(d devices.Device) {
	dlg := dialog.NewConfirm(lang.L("Unlink {{.Device}}?", map[string]any{"Device": linkedLabel(d).shortTitle()}),
		lang.L("It will be signed out at once and will need a new code to link again."),
		func(ok bool) {
			if !ok {
				return
			}
			s.runAction(func(ctx context.Context) error {
				return s.svc.Unlink(ctx, d.ID)
			}, func() { s.removeIDs(d.ID) })
		}, s.window)
	dlg.SetConfirmText(lang.L("Unlink"))
	dlg.SetConfirmImportance(widget.DangerImportance)
	showDialog(s.window, dlg)
}

// confirmUnlinkAll unlinks every device shown: all of them, or only those
// matching the search when one is typed (the dialog says which).
func (s *DevicesScreen) confirmUnlinkAll() {
	ids := make([]string, 0, len(s.shown))
	for _, d := range s.shown {
		ids = append(ids, d.ID)
	}
	if len(ids) == 0 {
		return
	}
	filtered := len(s.shown) < len(s.all)
	title, text, button := unlinkManyWords(s.shown, filtered, strings.TrimSpace(s.search.Text))
	dlg := dialog.NewConfirm(title, text,
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
	dlg.SetConfirmText(button)
	dlg.SetConfirmImportance(widget.DangerImportance)
	showDialog(s.window, dlg)
}

// unlinkManyWords words the dialog unlinking the devices shown: the title,
// the text and the confirm button's label.
func unlinkManyWords(shown []devices.Device, filtered bool, query string) (title, text, button string) {
	n := len(shown)
	data := map[string]any{"Count": n, "Query": query}
	switch {
	case n == 1 && filtered:
		return lang.L("Unlink {{.Device}}?", map[string]any{"Device": linkedLabel(shown[0]).shortTitle()}),
			lang.L("Only this device, which matches “{{.Query}}”, will be unlinked; the others stay linked. It will be signed out at once and will need a new code to link again.", data),
			lang.L("Unlink")
	case n == 1:
		return lang.L("Unlink {{.Device}}?", map[string]any{"Device": linkedLabel(shown[0]).shortTitle()}),
			lang.L("Your only linked device will be signed out at once and will need a new code to link again."),
			lang.L("Unlink")
	case filtered:
		return lang.N("Unlink these {{.Count}} devices?", n, data),
			lang.N("Only the {{.Count}} devices matching “{{.Query}}” will be unlinked; the others stay linked. They will be signed out at once and will need a new code to link again.", n, data),
			lang.N("Unlink {{.Count}} devices", n, data)
	}
	return lang.N("Unlink all {{.Count}} devices?", n, data),
		lang.L("Every linked device will be signed out at once and will need a new code to link again."),
		lang.L("Unlink all")
}

func (s *DevicesScreen) removeIDs(ids ...string) {
	s.all = slices.DeleteFunc(s.all, func(d devices.Device) bool { return slices.Contains(ids, d.ID) })
	s.applyFilter()
	s.unlinked(ids...)
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
