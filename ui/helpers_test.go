package ui

import (
	"cmp"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// waitFor polls cond (read under the UI lock, released even if cond panics, so one
// failing test cannot hang the package) until it holds or the deadline passes. The
// deadline is generous: it only matters when something is really stuck, and CI
// machines are busy.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		locked(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// locked runs f under the UI lock, for touching widgets while background work may run.
func locked(f func()) {
	uiMu.Lock()
	defer uiMu.Unlock()
	f()
}

func problemErr(status int, code string) error { return &devices.APIError{Status: status, Code: code} }

// walk visits o and everything under it, including widgets' rendered children.
func walk(o fyne.CanvasObject, visit func(fyne.CanvasObject) bool) bool {
	if o == nil || !o.Visible() {
		return false
	}
	if visit(o) {
		return true
	}
	switch v := o.(type) {
	case *fyne.Container:
		for _, c := range v.Objects {
			if walk(c, visit) {
				return true
			}
		}
	case fyne.Widget:
		r := cacheRenderer(v)
		for _, c := range r.Objects() {
			if walk(c, visit) {
				return true
			}
		}
	}
	return false
}

func findButton(o fyne.CanvasObject, text string) *widget.Button {
	var found *widget.Button
	walk(o, func(c fyne.CanvasObject) bool {
		if b, ok := c.(*widget.Button); ok && b.Text == text {
			found = b
			return true
		}
		if b, ok := c.(*focusButton); ok && b.Text == text {
			found = &b.Button
			return true
		}
		return false
	})
	return found
}

// hasText reports whether a visible label or rich text under o contains text.
func hasText(o fyne.CanvasObject, text string) bool {
	return walk(o, func(c fyne.CanvasObject) bool {
		switch v := c.(type) {
		case *widget.Label:
			return contains(v.Text, text)
		case *widget.RichText:
			return contains(v.String(), text)
		}
		return false
	})
}

// findTappableWithText finds a tappable object under o showing text (such as a
// menu item).
func findTappableWithText(o fyne.CanvasObject, text string) fyne.Tappable {
	var found fyne.Tappable
	walk(o, func(c fyne.CanvasObject) bool {
		tp, ok := c.(fyne.Tappable)
		if !ok {
			return false
		}
		if walk(c, func(x fyne.CanvasObject) bool {
			t, ok := x.(*canvas.Text)
			return ok && t.Text == text
		}) || hasText(c, text) {
			found = tp // keep going: the innermost match is the item itself
		}
		return false
	})
	return found
}

func contains(s, sub string) bool { return len(sub) > 0 && stringsContains(s, sub) }

// topOverlay is the dialog or pop-up on top of w, or nil.
func topOverlay(w fyne.Window) fyne.CanvasObject { return w.Canvas().Overlays().Top() }

// shot saves w's canvas as ui/name.png under the test artifacts directory for a look by eye.
func shot(t *testing.T, w fyne.Window, name string) {
	t.Helper()
	var img image.Image
	locked(func() { img = w.Canvas().Capture() })
	savePNG(t, name, img)
}

// savePNG writes img as ui/name.png under $ARTIFACTS (make test sets it; the system's
// temporary directory otherwise). A picture that can't be written is only logged: it is
// for people to look at, not part of what a test checks.
func savePNG(t *testing.T, name string, img image.Image) {
	t.Helper()
	dir := filepath.Join(cmp.Or(os.Getenv("ARTIFACTS"), os.TempDir()), "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".png"))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Logf("no screenshot: %v", err)
	}
}

// fakeLink is a LinkService fake with canned answers and a record of calls.
type fakeLink struct {
	mu       sync.Mutex
	req      devices.LinkRequest
	lookErr  error
	apprErr  error
	denyErr  error
	looked   []string
	approved []string
	names    []string
	inFront  []bool // ConfirmedInFront of each approval
	denied   []string
	block    chan struct{} // when set, calls wait on it
}

func (f *fakeLink) wait(ctx context.Context) error {
	f.mu.Lock()
	b := f.block
	f.mu.Unlock()
	if b == nil {
		return nil
	}
	select {
	case <-b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeLink) LinkRequest(ctx context.Context, code string) (devices.LinkRequest, error) {
	if err := f.wait(ctx); err != nil {
		return devices.LinkRequest{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looked = append(f.looked, code)
	if f.lookErr != nil {
		return devices.LinkRequest{}, f.lookErr
	}
	r := f.req
	r.UserCode = code
	return r, nil
}

func (f *fakeLink) ApproveWith(ctx context.Context, code string, a devices.ApproveRequest) (devices.Device, error) {
	if err := f.wait(ctx); err != nil {
		return devices.Device{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := a.DeviceName
	f.approved = append(f.approved, code)
	f.names = append(f.names, name)
	f.inFront = append(f.inFront, a.ConfirmedInFront)
	if f.apprErr != nil {
		return devices.Device{}, f.apprErr
	}
	n := name
	if n == "" {
		n = f.req.Device.Name
	}
	return devices.Device{ID: "dev-1", Name: n, Kind: f.req.Device.Kind, Client: f.req.Client}, nil
}

func (f *fakeLink) Deny(ctx context.Context, code string) error {
	if err := f.wait(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied = append(f.denied, code)
	return f.denyErr
}

func (f *fakeLink) calls() (looked, approved, denied []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.looked...), append([]string(nil), f.approved...), append([]string(nil), f.denied...)
}
