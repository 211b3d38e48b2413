// Package links is the one home of every operation on links, whichever front end asks:
// look up a user code, approve or deny it, list, rename and unlink linked devices, and
// wait for a decision (the kiosk's push channel). It owns the code-guess limiter (RFC
// 8628 §5.1), publishes the events (the waiting device's wake-up and the account's
// stream) and writes the audit log lines. server/api (JSON) and server/web (HTML) are
// thin adapters over a Service.
//
// One rule for every change: once the store has saved it, the operation succeeds. The
// events are published and the caller is told it worked even when the device cannot be
// fully rendered afterwards (then it is shown from the stored link alone).
package links

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/geoip"
	"github.com/linkdesk/linkdesk/server/metrics"
	"github.com/linkdesk/linkdesk/server/store"
)

// Store is the part of linkd's store the links service needs; store.Store has it all.
type Store interface {
	FailureCounter
	NearbyStore
	PendingUserCode(ctx context.Context, userCode string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error)
	ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []store.AttemptLimit, now time.Time, check store.ApproveCheck) (store.Grant, time.Duration, error)
	DenyUserCode(ctx context.Context, userCode, subject string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error)
	ClientByID(ctx context.Context, id string) (store.Client, error)
	ListClients(ctx context.Context) ([]store.Client, error)
	DeleteIdleGrants(ctx context.Context, clientID string, before time.Time, limit int) ([]store.Grant, error)
	GrantByID(ctx context.Context, subject, id string) (store.Grant, error)
	ListGrants(ctx context.Context, subject string, flow store.GrantFlow) ([]store.Grant, error)
	RenameGrant(ctx context.Context, subject, id, name string) (store.Grant, error)
	DeleteGrant(ctx context.Context, subject, id string) (store.Grant, error)
}

// Errors the Service returns for what the caller did wrong; anything else is internal.
var (
	// ErrInvalidCode: no such user code (or not a code at all). Counted by the limiter.
	ErrInvalidCode = errors.New("links: no such code")
	// ErrExpiredCode: the code's lifetime is over. Counted by the limiter.
	ErrExpiredCode = errors.New("links: code expired")
	// ErrUsedCode: the code was already approved or denied. Counted by the limiter.
	ErrUsedCode = errors.New("links: code already used")
	// ErrNotLinked: no such linked device of this account (unknown, another account's,
	// or the app's own sign-in).
	ErrNotLinked = errors.New("links: no such linked device")
	// ErrConfirmationRequired: the request came from another network than the
	// approver's and the person did not confirm being in front of the device
	// (Approval.InFront). Nothing was changed; the request is still pending.
	ErrConfirmationRequired = errors.New("links: confirm being in front of the device")
)

// RateLimitError is returned instead of looking a code up when the caller's account or
// address has had too many failed lookups; errors.Is(err, ErrRateLimited) holds.
type RateLimitError struct {
	RetryAfter time.Duration // until the caller is under every limit again
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("links: too many failed code lookups; retry after %v", e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

var _ Store = store.Store(nil) // linkd's whole store serves as one

// Config is what a Service needs. Store and Events are required.
type Config struct {
	Store  Store
	Events *events.Hub
	Logger *slog.Logger // nil: slog.Default()
	Now    func() time.Time
	// DescribeScope gives a scope's plain-words description; nil or "" falls back to
	// the scope name.
	DescribeScope func(string) string
	Limits        Limits
	// WaitRecheck is how often a push-channel waiter re-reads the store in case the
	// change happened on another replica; default 3 s.
	WaitRecheck time.Duration
	// MaxLinkedWaits caps the waits on one link that may run at once (per process);
	// default DefaultMaxLinkedWaits.
	MaxLinkedWaits int
	// Metrics counts approvals, denials and limited code lookups; nil counts nothing.
	Metrics *metrics.Recorder
	// Notifier, when set, hears of every new link (linkd's email notices); nil: none.
	Notifier Notifier
	// NearbyOff turns the nearby device list off (linkd serve --nearby-devices=false).
	NearbyOff bool
	// NearbyKey keys the nearby list's request ids and decoy codes; give every replica
	// the same one (linkd derives it from its secrets key). Empty: random per start.
	NearbyKey []byte
	// Places names the approximate place of request and last-seen addresses (linkd's
	// --geoip-db); nil shows none.
	Places geoip.Locator
}

// Service performs every operation on links. It is safe for concurrent use; give the
// management API and the web pages the same one.
type Service struct {
	cfg     Config
	log     *slog.Logger
	limiter *Limiter

	nearbyKey []byte

	clientNames clientNames

	waitMu      sync.Mutex
	linkedWaits map[string]int // grant id -> waits running on it
}

// New returns a Service over cfg.Store.
func New(cfg Config) *Service {
	if cfg.Store == nil || cfg.Events == nil {
		panic("links: Config.Store and Config.Events are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WaitRecheck <= 0 {
		cfg.WaitRecheck = 3 * time.Second
	}
	if cfg.MaxLinkedWaits <= 0 {
		cfg.MaxLinkedWaits = DefaultMaxLinkedWaits
	}
	cfg.Limits = cfg.Limits.withDefaults()
	key := cfg.NearbyKey
	if len(key) == 0 {
		key = newNearbyKey()
	}
	return &Service{
		cfg:         cfg,
		nearbyKey:   key,
		log:         cfg.Logger.With("component", "links"),
		limiter:     NewLimiter(cfg.Store, cfg.Limits, cfg.Now),
		linkedWaits: map[string]int{},
	}
}

// Limiter returns the service's failure limiter, for front ends that throttle other
// guessing (the web pages' sign-in) with the same counters under their own keys.
func (s *Service) Limiter() *Limiter { return s.limiter }

// SubscribeAccount starts delivering subject's device events (linked, renamed,
// unlinked); buffer <= 0 means the hub's default. Close the subscription when done.
func (s *Service) SubscribeAccount(subject string, buffer int) *events.AccountSubscription {
	return s.cfg.Events.SubscribeAccount(subject, buffer)
}

// Caller is who asks for a code operation: the signed-in account and the address the
// request came from. Both are throttled.
type Caller struct {
	Subject string
	IP      string
}

func (c Caller) keys() []string { return []string{AccountKey(c.Subject), AddressKey(c.IP)} }

// Link is one linked device: the stored grant and the device as people see it.
type Link struct {
	Grant  store.Grant
	Device devices.Device
}

// Name is what the device is called on screens: the person's name for it, else the
// device's own, else "Unnamed device".
func (l Link) Name() string {
	switch {
	case Label(l.Grant.Name) != "":
		return Label(l.Grant.Name)
	case Label(l.Grant.Device.Name) != "":
		return Label(l.Grant.Device.Name)
	}
	return "Unnamed device"
}

// Request is a pending link request as a person judging it sees it.
type Request struct {
	Auth   store.DeviceAuth
	Client devices.ClientInfo
	Scopes []devices.Scope
	// SameNetwork: the device asked from the caller's network (see SameNetwork).
	SameNetwork bool
	// Place is the approximate place of the device's address; zero when unknown.
	Place devices.Place
}

// LinkRequest is the request's wire form for the management API.
func (r Request) LinkRequest() devices.LinkRequest {
	d := r.Auth.Device
	d.Kind = devices.ParseKind(string(d.Kind))
	d.Name, d.Model = Label(d.Name), Label(d.Model) // also labels stored before cleaning
	return devices.LinkRequest{
		UserCode:    devices.FormatCode(r.Auth.UserCode),
		Client:      r.Client,
		Device:      d,
		Scopes:      r.Scopes,
		RequestedAt: r.Auth.CreatedAt.UTC(),
		ExpiresAt:   r.Auth.ExpiresAt.UTC(),
		Origin:      devices.Origin{IP: r.Auth.RequestIP, SameNetwork: r.SameNetwork, Place: r.Place},
	}
}
