package ui

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/linkdesk/linkdesk/devices"
)

// fakeNearby is a LinkService with the nearby list, behaving as linkd does: the list
// carries no codes, a wrong pick ends the request, a right one answers it.
type fakeNearby struct {
	fakeLink
	mu      sync.Mutex
	off     bool
	waiting []devices.NearbyRequest
	codes   map[string]string   // id -> the device's code
	choices map[string][]string // id -> the three offered
	picks   []string
	loads   int
}

func newFakeNearby() *fakeNearby {
	at := goldenNow.Add(-2 * time.Minute)
	return &fakeNearby{
		waiting: []devices.NearbyRequest{
			{ID: "id-living", Client: devices.ClientInfo{ID: "tv-app", Name: "Cinema Plus"},
				Device: devices.DeviceInfo{Name: "Living room TV", Model: "OLED55", Kind: devices.KindTV}, RequestedAt: at, ExpiresAt: at.Add(10 * time.Minute)},
			{ID: "id-console", Client: devices.ClientInfo{ID: "games", Name: "Game Hub"},
				Device: devices.DeviceInfo{Name: "Den console with a rather long name that must not push the Pick button away", Kind: devices.KindConsole}, RequestedAt: at, ExpiresAt: at.Add(10 * time.Minute)},
		},
		codes:   map[string]string{"id-living": "BCDF-GHJK", "id-console": "LMNP-QRST"},
		choices: map[string][]string{"id-living": {"ZXWV-TSRQ", "BCDF-GHJK", "MNPQ-RSTV"}, "id-console": {"LMNP-QRST", "DFGH-JKLM", "VWXZ-BCDF"}},
	}
}

func (f *fakeNearby) Nearby(context.Context) ([]devices.NearbyRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	if f.off {
		return nil, problemErr(404, devices.CodeNearbyOff)
	}
	return slices.Clone(f.waiting), nil
}

func (f *fakeNearby) NearbyChoices(_ context.Context, id string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.choices[id]; ok {
		return c, nil
	}
	return nil, problemErr(404, devices.CodeNotWaiting)
}

func (f *fakeNearby) PickNearby(_ context.Context, id, code string) (devices.LinkRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.picks = append(f.picks, id+"="+code)
	i := slices.IndexFunc(f.waiting, func(r devices.NearbyRequest) bool { return r.ID == id })
	if i < 0 {
		return devices.LinkRequest{}, problemErr(404, devices.CodeNotWaiting)
	}
	if f.codes[id] != code {
		f.waiting = slices.Delete(f.waiting, i, i+1)
		delete(f.choices, id)
		return devices.LinkRequest{}, problemErr(409, devices.CodeWrongPick)
	}
	r := f.waiting[i]
	return devices.LinkRequest{UserCode: code, Client: r.Client, Device: r.Device, RequestedAt: r.RequestedAt, ExpiresAt: r.ExpiresAt,
		Origin: devices.Origin{IP: "192.0.2.7", SameNetwork: true}}, nil
}

func newNearbyTest(t *testing.T, f *fakeNearby) (*CodeScreen, fyne.Window, func() []string) {
	t.Helper()
	test.NewTempApp(t)
	var mu sync.Mutex
	var found []string
	s := NewCodeScreen(f, func() string { return testIssuer }, func(code string, r devices.LinkRequest) {
		mu.Lock()
		defer mu.Unlock()
		found = append(found, code+" "+r.Device.Name)
	})
	s.nearby.now = func() time.Time { return goldenNow }
	w := test.NewWindow(s.Content())
	w.Resize(fyne.NewSize(640, 760))
	t.Cleanup(func() { locked(func() { s.StopNearby(); w.Close() }) })
	locked(s.StartNearby)
	return s, w, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(found) }
}

// The code screen lists the devices waiting nearby, never a code; a wrong pick of
// the three ends the request and says so; a right pick goes on to confirm.
func TestNearbyListAndThreeChoices(t *testing.T) {
	f := newFakeNearby()
	s, w, found := newNearbyTest(t, f)
	root := s.Content()
	waitFor(t, "the nearby list", func() bool { return hasText(root, "Living room TV") && hasText(root, "Den console") })
	locked(func() {
		if !hasText(root, "Devices waiting near you") || !hasText(root, "TV · OLED55 · Cinema Plus · 2 minutes ago") {
			t.Error("the list lacks its heading or a device's facts")
		}
		for _, c := range []string{"BCDF-GHJK", "LMNP-QRST", "BCDFGHJK"} {
			if hasText(root, c) || findButton(root, c) != nil {
				t.Errorf("the list shows the code %s", c)
			}
		}
	})
	shot(t, w, "nearby")

	// Wrong pick on the Living room TV.
	locked(func() { test.Tap(findButton(root, "Pick")) })
	waitFor(t, "the three codes", func() bool { return findButton(root, "MNPQ-RSTV") != nil })
	locked(func() {
		if !hasText(root, "Which code does Living room TV show?") || findButton(root, "BCDF-GHJK") == nil || findButton(root, "ZXWV-TSRQ") == nil {
			t.Error("the three-code step lacks its question or a code")
		}
	})
	shot(t, w, "nearby_choices")
	locked(func() { test.Tap(findButton(root, "ZXWV-TSRQ")) })
	waitFor(t, "the wrong pick told", func() bool { return hasText(root, "That is not the code your device shows") })
	waitFor(t, "the ended request gone", func() bool { return !hasText(root, "Living room TV") })
	if got := found(); len(got) != 0 {
		t.Fatalf("a wrong pick went on to confirm: %q", got)
	}
	shot(t, w, "nearby_wrong")

	// Right pick on the console, by keyboard: Tab to its Pick, Space, Tab to the code.
	locked(func() {
		c := w.Canvas()
		c.Focus(s.entry)
		for range 10 {
			if b, ok := c.Focused().(*focusButton); ok && b.Text == "Pick" {
				break
			}
			c.FocusNext()
		}
		b, ok := c.Focused().(*focusButton)
		if !ok || b.Text != "Pick" {
			t.Fatalf("Tab never reached a Pick button (focused %T)", c.Focused())
		}
		b.TypedKey(&fyne.KeyEvent{Name: fyne.KeySpace})
	})
	waitFor(t, "the console's codes", func() bool { return findButton(root, "LMNP-QRST") != nil })
	locked(func() {
		c := w.Canvas()
		if b, ok := c.Focused().(*focusButton); !ok || b.Text != "None of these" {
			t.Errorf("focus on the three-code step: %T, want the way back", c.Focused())
		}
		for range 10 {
			if b, ok := c.Focused().(*focusButton); ok && b.Text == "LMNP-QRST" {
				break
			}
			c.FocusPrevious()
		}
		b, ok := c.Focused().(*focusButton)
		if !ok || b.Text != "LMNP-QRST" {
			t.Fatalf("Shift+Tab never reached the right code (focused %T)", c.Focused())
		}
		b.TypedKey(&fyne.KeyEvent{Name: fyne.KeySpace})
	})
	waitFor(t, "the confirm step", func() bool { return len(found()) == 1 })
	if got := found()[0]; got != "LMNPQRST Den console with a rather long name that must not push the Pick button away" {
		t.Fatalf("went on to confirm with %q", got)
	}
}

// With the list turned off by the operator, the section is not shown.
func TestNearbyOffHidesSection(t *testing.T) {
	f := newFakeNearby()
	f.off = true
	s, _, _ := newNearbyTest(t, f)
	waitFor(t, "the section hidden", func() bool { return !s.nearby.root.Visible() })
	locked(func() {
		if hasText(s.Content(), "Devices waiting near you") {
			t.Error("the section shows although the list is off")
		}
	})
}
