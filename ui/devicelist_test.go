package ui

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/devices"
)

// fakeDevices is a DeviceService fake holding a device list and an event feed.
type fakeDevices struct {
	mu      sync.Mutex
	list    []devices.Device
	listErr error
	renamed map[string]string
	unlinks []string
	events  chan devices.Event
}

func (f *fakeDevices) Devices(ctx context.Context) ([]devices.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list), f.listErr
}

func (f *fakeDevices) Rename(ctx context.Context, id, name string) (devices.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renamed == nil {
		f.renamed = map[string]string{}
	}
	f.renamed[id] = name
	for i, d := range f.list {
		if d.ID == id {
			f.list[i].Name = name
			return f.list[i], nil
		}
	}
	return devices.Device{}, problemErr(404, devices.CodeNotFound)
}

func (f *fakeDevices) Unlink(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unlinks = append(f.unlinks, id)
	f.list = slices.DeleteFunc(f.list, func(d devices.Device) bool { return d.ID == id })
	return nil
}

func (f *fakeDevices) Events(ctx context.Context) (<-chan devices.Event, error) {
	out := make(chan devices.Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-f.events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func sampleDevices(n int) []devices.Device {
	seen := time.Now().Add(-3 * time.Hour)
	kinds := []devices.DeviceKind{devices.KindTV, devices.KindConsole, devices.KindKiosk}
	out := make([]devices.Device, n)
	for i := range out {
		out[i] = devices.Device{
			ID: fmt.Sprintf("d%d", i), Name: fmt.Sprintf("Device %d", i), Kind: kinds[i%3],
			Model: "Model X", Client: devices.ClientInfo{ID: "tv", Name: "Cinema Plus"},
			Scopes:   []devices.Scope{{Name: "openid", Description: "Know who you are"}},
			LinkedAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), LastSeenAt: &seen, LastIP: "192.0.2.1",
		}
	}
	out[0].Name, out[1].Name = "Living room TV", "Kitchen kiosk"
	return out
}

func newDevicesTest(t *testing.T, svc *fakeDevices) (*DevicesScreen, fyne.Window, *[]devices.Device) {
	t.Helper()
	test.NewTempApp(t)
	w := test.NewWindow(nil)
	var linked []devices.Device
	s := NewDevicesScreen(svc, w, func(d devices.Device) { linked = append(linked, d) })
	w.SetContent(s.Content())
	w.Resize(fyne.NewSize(900, 600))
	t.Cleanup(func() { locked(func() { s.Stop(); w.Close() }) })
	locked(s.Reload)
	waitFor(t, "the list to load", func() bool { return !s.progress.Visible() })
	return s, w, &linked
}

func TestDevicesListShowsAndFilters(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(2000), events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		if s.list.Length() != 2000 {
			t.Fatalf("list length %d", s.list.Length())
		}
		s.list.Select(0)
		if !hasText(s.detail, "Living room TV") || !hasText(s.detail, "Cinema Plus") || !hasText(s.detail, "3 hours ago") {
			t.Error("details panel lacks the device")
		}
	})
	shot(t, w, "devices")
	locked(func() {
		test.Type(s.search, "kitchen")
		if s.list.Length() != 1 || s.shown[0].Name != "Kitchen kiosk" {
			t.Fatalf("filtered to %d", s.list.Length())
		}
		s.search.SetText("no such thing")
		if s.list.Length() != 0 || !s.noMatch.Visible() {
			t.Fatal("no-match state missing")
		}
	})
}

func TestDevicesEmptyState(t *testing.T) {
	s, w, _ := newDevicesTest(t, &fakeDevices{events: make(chan devices.Event)})
	locked(func() {
		if !s.empty.Visible() || !hasText(s.empty, "No linked devices yet") {
			t.Fatal("empty state not shown")
		}
	})
	shot(t, w, "devices-empty")
}

func TestDevicesRename(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(3), events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		s.list.Select(0)
		test.Tap(findButton(s.detail, "Rename"))
	})
	var dlg fyne.CanvasObject
	locked(func() { dlg = topOverlay(w) })
	if dlg == nil {
		t.Fatal("no rename dialog")
	}
	shot(t, w, "devices-rename")
	locked(func() {
		var entry *escEntry
		walk(dlg, func(o fyne.CanvasObject) bool { entry, _ = o.(*escEntry); return entry != nil })
		if entry == nil || w.Canvas().Focused() != entry {
			t.Fatal("rename entry missing or not focused")
		}
		entry.SetText("Den TV")
		test.Tap(findButton(dlg, "Rename"))
	})
	waitFor(t, "the new name", func() bool { return len(s.all) > 0 && s.all[0].Name == "Den TV" })
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if svc.renamed["d0"] != "Den TV" {
		t.Fatalf("renamed %v", svc.renamed)
	}
}

func TestDevicesUnlinkAfterConfirm(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(3), events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		s.list.Select(1)
		test.Tap(findButton(s.detail, "Unlink"))
	})
	shot(t, w, "devices-unlink")
	locked(func() {
		dlg := topOverlay(w)
		if dlg == nil || !hasText(dlg, "Unlink Kitchen kiosk?") {
			t.Fatal("no unlink confirmation")
		}
		test.Tap(findButton(dlg, "Unlink"))
	})
	waitFor(t, "the device to go", func() bool { return len(s.all) == 2 })
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.unlinks) != 1 || svc.unlinks[0] != "d1" {
		t.Fatalf("unlinked %v", svc.unlinks)
	}
}

func TestDevicesUnlinkAll(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(3), events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		test.Tap(s.unlinkAll)
		test.Tap(findButton(topOverlay(w), "Unlink all"))
	})
	waitFor(t, "all devices to go", func() bool { return len(s.all) == 0 && s.empty.Visible() })
}

func TestDevicesLiveEvents(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(2), events: make(chan devices.Event)}
	s, _, linked := newDevicesTest(t, svc)
	nd := sampleDevices(3)[2]
	nd.ID, nd.Name = "new", "Bedroom console"
	svc.events <- devices.Event{Type: devices.EventLinked, Device: nd}
	waitFor(t, "the linked device", func() bool { return len(s.all) == 3 && s.all[0].ID == "new" && len(*linked) == 1 })
	svc.events <- devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "d0"}}
	waitFor(t, "the unlinked device to go", func() bool { return len(s.all) == 2 })
}

func TestDevicesResyncReloadsList(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(2), events: make(chan devices.Event)}
	s, _, _ := newDevicesTest(t, svc)
	svc.mu.Lock()
	svc.list = sampleDevices(5) // changed while the stream was reconnecting
	svc.mu.Unlock()
	svc.events <- devices.Event{Type: devices.EventResync}
	waitFor(t, "the list to be loaded again", func() bool { return len(s.all) == 5 })
	svc.events <- devices.Event{Type: devices.EventUnlinked, Device: devices.Device{ID: "d4"}}
	waitFor(t, "events to keep flowing after the resync", func() bool { return len(s.all) == 4 })
}

// BenchmarkDevicesFilter measures re-filtering 10,000 linked devices per keystroke.
func BenchmarkDevicesFilter(b *testing.B) {
	test.NewTempApp(b)
	w := test.NewWindow(nil)
	defer w.Close()
	s := NewDevicesScreen(&fakeDevices{}, w, nil)
	w.SetContent(s.Content())
	w.Resize(fyne.NewSize(900, 600))
	s.setAll(sampleDevices(10000))
	queries := []string{"k", "ki", "kit", "kitchen", ""}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.search.SetText(queries[i%len(queries)])
	}
}

func TestDevicesRenameEscapeCancels(t *testing.T) {
	svc := &fakeDevices{list: sampleDevices(2), events: make(chan devices.Event)}
	s, w, _ := newDevicesTest(t, svc)
	locked(func() {
		s.list.Select(0)
		test.Tap(findButton(s.detail, "Rename"))
		focused := w.Canvas().Focused()
		if focused == nil {
			t.Fatal("rename entry not focused")
		}
		test.Type(focused, " upstairs")
		focused.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape})
		if topOverlay(w) != nil {
			t.Error("Escape did not close the rename dialog")
		}
	})
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.renamed) != 0 {
		t.Errorf("Escape renamed: %v", svc.renamed)
	}
}
