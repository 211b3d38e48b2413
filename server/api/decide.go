package api

import (
	"context"
	"log/slog"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/store"
)

// Decider approves and denies link requests for the management API and the web
// pages alike, so every decision wakes the waiting device (the push channel)
// and reaches the account's event stream in the same way.
type Decider struct {
	Store  store.Store
	Events *events.Hub
	View   Renderer
	Log    *slog.Logger
}

// Approve links the device behind code to subject, naming it deviceName ("" keeps
// the device's own name). The store's errors (unknown, expired, used code) come
// back as they are. The device is the linked device as the API shows it; when it
// can't be rendered, err is nil and the device is zero (the link stands).
func (d Decider) Approve(ctx context.Context, code, subject, deviceName string, now time.Time) (store.Grant, devices.Device, error) {
	g, err := d.Store.ApproveDeviceAuth(ctx, code, subject, deviceName, now)
	if err != nil {
		return g, devices.Device{}, err
	}
	d.Events.PublishDeviceAuth(events.DeviceAuthKey(code), store.DeviceAuthApproved)
	d.Log.InfoContext(ctx, "device linked", "subject", subject, "device", g.ID, "client", g.ClientID)
	dev, err := d.View.Device(ctx, g)
	if err != nil {
		d.Log.ErrorContext(ctx, "device of approved link", "err", err)
		return g, devices.Device{}, nil
	}
	d.Events.PublishAccount(subject, devices.Event{Type: devices.EventLinked, Device: dev})
	return g, dev, nil
}

// Deny refuses the request behind code for subject and wakes the waiting device.
func (d Decider) Deny(ctx context.Context, code, subject string, now time.Time) error {
	if err := d.Store.DenyDeviceAuth(ctx, code, subject, now); err != nil {
		return err
	}
	d.Events.PublishDeviceAuth(events.DeviceAuthKey(code), store.DeviceAuthDenied)
	d.Log.InfoContext(ctx, "link request denied", "subject", subject)
	return nil
}
