package ui

import (
	"context"
	"errors"
	"net/http"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/devices"
)

// isSignedOut reports whether err means the current sign-in is over (revoked,
// expired, or refused by the service), so the app should ask to sign in again.
func isSignedOut(err error) bool {
	if errors.Is(err, ErrSignedOut) || errors.Is(err, auth.ErrSessionEnded) || errors.Is(err, auth.ErrNoToken) {
		return true
	}
	if p, ok := problemOf(err); ok {
		return p.Code == devices.CodeUnauthorized || p.Status == http.StatusUnauthorized
	}
	return false
}

// watchLink and watchDevices pass calls through and report a finished sign-in
// to onSignedOut (on the UI goroutine), so every screen's failure leads to the
// sign-in screen without each screen knowing about sessions.
type watchLink struct {
	LinkService
	onSignedOut func()
}

func (w watchLink) check(err error) error {
	if err != nil && isSignedOut(err) {
		doUI(w.onSignedOut)
	}
	return err
}

// LinkRequest passes through, watching for an ended sign-in.
func (w watchLink) LinkRequest(ctx context.Context, code string) (devices.LinkRequest, error) {
	r, err := w.LinkService.LinkRequest(ctx, code)
	return r, w.check(err)
}

// ApproveWith passes through, watching for an ended sign-in.
func (w watchLink) ApproveWith(ctx context.Context, code string, a devices.ApproveRequest) (devices.Device, error) {
	d, err := w.LinkService.ApproveWith(ctx, code, a)
	return d, w.check(err)
}

// Deny passes through, watching for an ended sign-in.
func (w watchLink) Deny(ctx context.Context, code string) error {
	return w.check(w.LinkService.Deny(ctx, code))
}

// watchNearbyLink is watchLink over a service that also lists the devices waiting
// nearby, passing those calls through too.
type watchNearbyLink struct {
	watchLink
	nearby NearbyService
}

// withNearby returns w, with the nearby calls when its service has them.
func (w watchLink) withNearby(src LinkService) LinkService {
	if ns, ok := src.(NearbyService); ok {
		return watchNearbyLink{watchLink: w, nearby: ns}
	}
	return w
}

// Nearby passes through, watching for an ended sign-in.
func (w watchNearbyLink) Nearby(ctx context.Context) ([]devices.NearbyRequest, error) {
	l, err := w.nearby.Nearby(ctx)
	return l, w.check(err)
}

// NearbyChoices passes through, watching for an ended sign-in.
func (w watchNearbyLink) NearbyChoices(ctx context.Context, id string) ([]string, error) {
	c, err := w.nearby.NearbyChoices(ctx, id)
	return c, w.check(err)
}

// PickNearby passes through, watching for an ended sign-in.
func (w watchNearbyLink) PickNearby(ctx context.Context, id, code string) (devices.LinkRequest, error) {
	r, err := w.nearby.PickNearby(ctx, id, code)
	return r, w.check(err)
}

type watchDevices struct {
	DeviceService
	onSignedOut func()
}

func (w watchDevices) check(err error) error {
	if err != nil && isSignedOut(err) {
		doUI(w.onSignedOut)
	}
	return err
}

// Devices passes through, watching for an ended sign-in.
func (w watchDevices) Devices(ctx context.Context) ([]devices.Device, error) {
	l, err := w.DeviceService.Devices(ctx)
	return l, w.check(err)
}

// Rename passes through, watching for an ended sign-in.
func (w watchDevices) Rename(ctx context.Context, id, name string) (devices.Device, error) {
	d, err := w.DeviceService.Rename(ctx, id, name)
	return d, w.check(err)
}

// Unlink passes through, watching for an ended sign-in.
func (w watchDevices) Unlink(ctx context.Context, id string) error {
	return w.check(w.DeviceService.Unlink(ctx, id))
}

// Events passes through, watching for an ended sign-in.
func (w watchDevices) Events(ctx context.Context) (<-chan devices.Event, error) {
	ch, err := w.DeviceService.Events(ctx)
	return ch, w.check(err)
}
