package device

import (
	"time"

	"golang.org/x/oauth2"
)

// State is one state of the device flow, reported to the screen that renders it.
type State interface{ deviceState() }

// Connecting is reported while the flow reaches the provider for the first time.
type Connecting struct{}

// ShowingCode is reported whenever a new code is to be shown.
type ShowingCode struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string    // empty when the provider sends none
	ExpiresAt               time.Time // on the flow's clock
	AfterDecline            bool      // the previous code was declined
}

// Offline is reported when the provider cannot be reached; the flow retries at RetryAt and
// the code shown before (if any, and still valid) stays usable.
type Offline struct {
	Err     error
	RetryAt time.Time
	Linked  bool // the device is linked and only the periodic check failed
}

// Declined is reported when the person declined the link; a fresh code follows.
type Declined struct{}

// Linked is reported when the device holds tokens for an account. DisplayName is empty
// when the provider does not say whose account it is.
type Linked struct {
	Token       *oauth2.Token
	DisplayName string
	Subject     string
}

// Unlinked is reported when the link was removed, by this device or elsewhere; a fresh code follows.
type Unlinked struct{ ByUs bool }

// Error is reported for a failure that is not a network outage (a misconfigured client,
// a provider that is not OpenID or offers no device grant); the flow retries at RetryAt.
// Err is typed: an *auth.DiscoveryError, an *auth.HTTPError or ErrNoDeviceGrant.
type Error struct {
	Err     error
	RetryAt time.Time
}

func (Connecting) deviceState()  {}
func (ShowingCode) deviceState() {}
func (Offline) deviceState()     {}
func (Declined) deviceState()    {}
func (Linked) deviceState()      {}
func (Unlinked) deviceState()    {}
func (Error) deviceState()       {}
