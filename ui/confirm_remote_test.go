package ui

import (
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/linkdesk/linkdesk/devices"
)

// remoteRequest is demoRequest made from another network, in Lisbon.
func remoteRequest() devices.LinkRequest {
	req := demoRequest()
	req.Origin = devices.Origin{IP: "203.0.113.7", SameNetwork: false,
		Place: devices.Place{City: "Lisbon", Country: "Portugal", CountryCode: "PT"}}
	return req
}

const remoteLine = "Requested from Lisbon, Portugal (203.0.113.7) — not your network"

// From another network the confirm screen says so in one line, and Link device
// stays disabled until the person ticks that they are in front of the device, which
// the keyboard reaches from the name field. The approval then says it was ticked.
func TestConfirmFromAnotherNetworkNeedsTick(t *testing.T) {
	svc := &fakeLink{req: remoteRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	locked(func() {
		root := w.Content()
		if !hasText(root, remoteLine) {
			t.Errorf("confirm screen lacks %q", remoteLine)
		}
		if !c.inFront.Visible() || c.inFront.Text != inFrontText || c.inFront.Checked {
			t.Fatalf("in-front tick: visible %v, %q, checked %v", c.inFront.Visible(), c.inFront.Text, c.inFront.Checked)
		}
		if !c.approve.Disabled() {
			t.Fatal("Link device enabled before the tick")
		}
		// A typed code is not asked to be checked again; it shows in the facts.
		if hasText(root, checkCodeText) || !hasText(root, "WDJB-MJHT") {
			t.Error("typed code: the check sentence is shown, or the code is missing")
		}
		test.Tap(c.approve) // disabled: nothing happens
		c.Approve()         // nor through the method
	})
	shot(t, w, "confirm-remote")
	if _, approved, _ := svc.calls(); len(approved) != 0 {
		t.Fatalf("approved without the tick: %v", approved)
	}

	// Keyboard: Tab from the name field (where the focus starts) reaches the tick,
	// Space ticks it.
	locked(func() {
		f.Focus(w.Canvas())
		if w.Canvas().Focused() != c.name {
			t.Fatalf("focus on %T, want the name field", w.Canvas().Focused())
		}
		w.Canvas().FocusNext()
		if w.Canvas().Focused() != fyne.Focusable(c.inFront) {
			t.Fatalf("Tab from the name field reached %T, want the in-front tick", w.Canvas().Focused())
		}
		test.Type(w.Canvas().Focused(), " ")
		if !c.inFront.Checked || c.approve.Disabled() {
			t.Fatalf("after Space: ticked %v, Link device disabled %v", c.inFront.Checked, c.approve.Disabled())
		}
		c.inFront.SetChecked(false) // unticking disables it again
		if !c.approve.Disabled() {
			t.Fatal("Link device enabled after unticking")
		}
		c.inFront.SetChecked(true)
	})
	shot(t, w, "confirm-remote-ticked")
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the success screen", func() bool { return hasText(w.Content(), "Device linked") })
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.inFront) != 1 || !svc.inFront[0] {
		t.Fatalf("approval sent confirmed_in_front %v, want true", svc.inFront)
	}
}

// From the same network there is no tick, Link device is enabled at once, and the
// approval does not claim a tick.
func TestConfirmSameNetworkNeedsNoTick(t *testing.T) {
	svc := &fakeLink{req: demoRequest()}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	locked(func() {
		if c.inFront.Visible() || c.approve.Disabled() {
			t.Fatalf("same network: tick visible %v, Link device disabled %v", c.inFront.Visible(), c.approve.Disabled())
		}
		if !hasText(w.Content(), "Requested from 192.168.1.20 — your network") {
			t.Error("same network: origin line missing")
		}
		test.Tap(c.approve)
	})
	waitFor(t, "the success screen", func() bool { return hasText(w.Content(), "Device linked") })
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.inFront) != 1 || svc.inFront[0] {
		t.Fatalf("approval sent confirmed_in_front %v, want false", svc.inFront)
	}
}

// When linkd judges the request to be from another network after all (this
// computer's address changed), its refusal brings up the tick and says why.
func TestConfirmationRequiredByServerAsksForTick(t *testing.T) {
	svc := &fakeLink{req: demoRequest(), apprErr: problemErr(422, devices.CodeConfirmationRequired)}
	f, w := newFlowTest(t, svc)
	c := toConfirm(t, f)
	locked(func() { test.Tap(c.approve) })
	waitFor(t, "the tick", func() bool { return c.inFront.Visible() })
	locked(func() {
		if !c.approve.Disabled() || !hasText(w.Content(), "Tick “"+inFrontText+"”") {
			t.Errorf("after confirmation_required: Link device disabled %v, banner %q", c.approve.Disabled(), c.banner.label.Text)
		}
	})
}

// A code that came by an opened link or a paste is shown large, with the request to
// check it against the device (RFC 8628 §3.3.1); a typed one is not.
func TestConfirmShowsGivenCodeLarge(t *testing.T) {
	for _, tc := range []struct {
		name string
		give func(f *LinkFlow)
	}{
		{"opened link", func(f *LinkFlow) { f.Fill(testIssuer + "/link?user_code=WDJB-MJHT") }},
		{"pasted code", func(f *LinkFlow) {
			f.Code.entry.TypedShortcut(&fyne.ShortcutPaste{Clipboard: textClipboard("wdjbmjht")})
			test.Tap(f.Code.cont)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, w := newFlowTest(t, &fakeLink{req: remoteRequest()})
			locked(func() { tc.give(f) })
			var c *ConfirmScreen
			waitFor(t, "the confirm screen", func() bool { c = f.confirm; return c != nil })
			locked(func() {
				if !hasText(w.Content(), checkCodeText) {
					t.Errorf("no %q", checkCodeText)
				}
				big := false
				walk(w.Content(), func(o fyne.CanvasObject) bool {
					if l, ok := o.(*widget.Label); ok && l.Text == "WDJB-MJHT" && l.Alignment == fyne.TextAlignCenter {
						big = true
					}
					return big
				})
				if !big {
					t.Error("the code is not shown large")
				}
			})
			if tc.name == "opened link" {
				locked(func() {
					// Freeze the countdown for the picture.
					c.now = func() time.Time { return c.req.ExpiresAt.Add(-9*time.Minute - 30*time.Second) }
					c.tick()
				})
				shot(t, w, "confirm-remote-given")
			}
		})
	}
}
