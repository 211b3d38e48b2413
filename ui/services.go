package ui

import (
	"context"
	"image"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/devices/scan"
)

// CodeLookup is what the code screen needs: the pending request a code stands for.
type CodeLookup interface {
	LinkRequest(ctx context.Context, code string) (devices.LinkRequest, error)
}

// LinkDecider is what the confirm screen needs: approve (optionally naming the
// device, and saying whether the person ticked that they are in front of it) or
// deny the request behind a code.
type LinkDecider interface {
	ApproveWith(ctx context.Context, code string, a devices.ApproveRequest) (devices.Device, error)
	Deny(ctx context.Context, code string) error
}

// LinkService is what the whole "Link a device" flow needs.
type LinkService interface {
	CodeLookup
	LinkDecider
}

// DeviceService is what the linked-devices screen needs. Events delivers the
// account's events until ctx ends or the stream breaks, then closes the channel.
type DeviceService interface {
	Devices(ctx context.Context) ([]devices.Device, error)
	Rename(ctx context.Context, id, name string) (devices.Device, error)
	Unlink(ctx context.Context, id string) error
	Events(ctx context.Context) (<-chan devices.Event, error)
}

// SessionService is what the sign-in and account screens need. Accounts lists
// the accounts signed in on this computer and which one is current (its
// Subject, or "" when none).
type SessionService interface {
	SignIn(ctx context.Context) (devices.Me, error)
	Accounts(ctx context.Context) (accounts []devices.Me, current string, err error)
	Switch(ctx context.Context, subject string) error
	SignOut(ctx context.Context, subject string) error
}

// ServiceConnector is what the service setup screen needs: check that issuer
// (trusting the optional CA file) is a reachable Linkdesk service and, when it
// is, start using it.
type ServiceConnector interface {
	Connect(ctx context.Context, issuer, caFile string) error
}

// PictureSource is what scanning needs from the computer: frames from its
// camera and the picture on its clipboard. Reading the QR code in them is
// package scan's job, on this machine; pictures are never uploaded.
type PictureSource interface {
	OpenCamera(ctx context.Context) (scan.FrameReader, error)
	ClipboardImage(ctx context.Context) (image.Image, error)
}

// KeyringChecker is what sign-in needs so the browser and the app never
// disagree: before the browser opens, CheckKeyring says whether the sign-in can
// be kept (nil when it can). When it can't, the person may choose
// RememberForThisRunOnly: sign-ins are then kept in memory until Linkdesk
// quits, and RemembersSignIns reports false. A SessionService may implement it.
type KeyringChecker interface {
	CheckKeyring(ctx context.Context) error
	RememberForThisRunOnly()
	RemembersSignIns() bool
}
