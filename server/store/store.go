// Package store defines linkd's persistence as one Go interface, so the provider,
// the management API and the web pages share one source of truth and a second
// backend (PostgreSQL) can be added without touching them. Implementations live
// in sub-packages (store/sqlite).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/linkdesk/linkdesk/devices"
)

// Errors every implementation returns (possibly wrapped) so callers can switch on them.
var (
	ErrNotFound          = errors.New("store: not found")
	ErrDuplicate         = errors.New("store: already exists")
	ErrDuplicateUserCode = errors.New("store: user code already in use")
	ErrExpired           = errors.New("store: expired")
	ErrAlreadyUsed       = errors.New("store: already used")
	// ErrRefreshReused means a rotated refresh token was presented again; the
	// store has already deleted the whole grant when it returns this.
	ErrRefreshReused = errors.New("store: refresh token reused")
	// ErrUnavailable wraps a storage fault that may pass (disk full, read-only or
	// unreachable database, I/O error, lock timeout): nothing was changed, and callers
	// answer "try again later" instead of a final answer.
	ErrUnavailable = errors.New("store: temporarily unavailable")
	// ErrLimited means a RequestCaps cap was reached: nothing was stored, the caller
	// answers "too many requests".
	ErrLimited = errors.New("store: limit reached")
)

// RequestCaps bounds the requests nobody has approved yet (pending device
// authorizations, auth requests not signed in) that unauthenticated callers make linkd
// store. The counts are taken in the transaction that stores the new request, so a
// burst cannot pass them. A zero cap is no cap.
type RequestCaps struct {
	Window        time.Duration // the span PerIPRate and PerClientRate count over
	PerIPRate     int           // new requests from one address within Window
	PerClientRate int           // new requests of one client within Window
	PerIP         int           // unexpired requests waiting, from one address
	PerClient     int           // unexpired requests waiting, of one client
	Total         int           // unexpired requests waiting, overall
	// Keep is how long a never-approved request is kept after it expired (so its code
	// still answers "expired"); each capped create deletes a few older ones.
	Keep time.Duration
}

// Any reports whether any count is capped (a zero cap is no cap).
func (c RequestCaps) Any() bool {
	return c.PerIPRate > 0 || c.PerClientRate > 0 || c.PerIP > 0 || c.PerClient > 0 || c.Total > 0
}

// User is an account that can sign in and own links.
type User struct {
	Subject      string // stable opaque id, never reused
	Username     string // unique, case-insensitive
	DisplayName  string
	Email        string
	PasswordHash string // argon2id/bcrypt PHC string
	TOTPSecret   string // base32; empty when the account has no second factor
	CreatedAt    time.Time
}

// Client is a registered OAuth client (the built-in linkdesk and linkdesk-kiosk, or an
// operator-registered device app).
type Client struct {
	ID           string
	Name         string
	LogoURI      string
	SecretHash   string   // empty for public clients
	Scopes       []string // scopes it may ask for
	RedirectURIs []string // for authorization code clients
	GrantTypes   []string // oidc grant type URNs/names
	CreatedAt    time.Time
	Policy       ClientPolicy // the operator's rules for its device links
}

// ClientPolicy is what an operator decides for one device client (linkd clients
// add/update); the zero value restricts nothing.
type ClientPolicy struct {
	// DeviceFlowOff refuses new device authorizations; links already made keep working.
	DeviceFlowOff bool
	// AllowedNetworks are the CIDRs device requests may come from; empty: anywhere.
	AllowedNetworks []string
	// ApproveSameNetwork lets only an approver on the device's own network approve.
	ApproveSameNetwork bool
	// MaxDevices caps one account's live links to the client; 0: no cap.
	MaxDevices int
	// UnlinkAfter unlinks a link unused (last seen, else created) for this long; 0: never.
	UnlinkAfter time.Duration
}

// DeviceAuthState is where a device authorization stands.
type DeviceAuthState string

// Device authorization states. Pending becomes Approved or Denied exactly once;
// Approved becomes Consumed when the device collects its tokens (single use, but for a
// short retry of an answer the device never received: see CollectDeviceTokens).
const (
	DeviceAuthPending  DeviceAuthState = "pending"
	DeviceAuthApproved DeviceAuthState = "approved"
	DeviceAuthDenied   DeviceAuthState = "denied"
	DeviceAuthConsumed DeviceAuthState = "consumed"
)

// DeviceAuth is one RFC 8628 device authorization request. Implementations store only
// a SHA-256 of DeviceCode; on reads DeviceCode is empty.
type DeviceAuth struct {
	DeviceCode string
	UserCode   string // canonical, 8 letters, no dash
	ClientID   string
	Scopes     []string
	Device     devices.DeviceInfo
	RequestIP  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	Interval   time.Duration // polling interval the device was given (pacing is per process, in memory)
	State      DeviceAuthState
	Subject    string // who approved or denied
	GrantID    string // the grant created on approval
	AuthTime   time.Time
	// CollectedAt is when the device collected its tokens (zero before).
	CollectedAt time.Time
}

// DeviceTokens is what one answer to a device's token request stores.
type DeviceTokens struct {
	Access  AccessToken
	Refresh RefreshToken // Token "" when the answer carries no refresh token
}

// GrantFlow says how a grant was made.
type GrantFlow string

// Grant flows: a device linked with a user code, or the desktop app signed in with PKCE.
const (
	FlowDevice GrantFlow = "device"
	FlowSignIn GrantFlow = "signin"
)

// Grant is one live authorization of a client for an account; every token belongs to one
// grant and dies with it. Device-flow grants are the "linked devices" people manage.
type Grant struct {
	ID         string
	Subject    string
	ClientID   string
	Scopes     []string
	Flow       GrantFlow
	Name       string // what the person calls the device
	Device     devices.DeviceInfo
	AuthTime   time.Time
	CreatedAt  time.Time
	LastSeenAt time.Time // zero if never used
	LastIP     string
}

// LastUsed is when the grant was last used: last seen, else created. Idle unlinking
// (ClientPolicy.UnlinkAfter) counts from it.
func (g Grant) LastUsed() time.Time {
	if g.LastSeenAt.IsZero() {
		return g.CreatedAt
	}
	return g.LastSeenAt
}

// AccessToken is an opaque access token's server-side record; checked on every use.
type AccessToken struct {
	ID        string
	GrantID   string
	Subject   string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// RefreshToken is a rotating refresh token. Implementations store only a SHA-256 of
// Token; on reads Token is empty.
type RefreshToken struct {
	Token     string
	GrantID   string
	Subject   string
	ClientID  string
	Scopes    []string
	AuthTime  time.Time
	AMR       []string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuthRequest is an authorization-code request waiting for the person to sign in and
// then for the client to redeem its code. Implementations store only a SHA-256 of Code.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	State               string
	Nonce               string
	Scopes              []string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *uint
	LoginHint           string
	Subject             string // set when the person has signed in
	AuthTime            time.Time
	AMR                 []string
	Done                bool
	RequestIP           string // the caller that started the request
	CreatedAt           time.Time
	ExpiresAt           time.Time
}

// SigningKey is a token-signing key; all are published, and the newest whose NotBefore
// has come signs.
type SigningKey struct {
	ID            string
	Algorithm     string // e.g. "RS256"
	PrivateKeyPEM []byte
	CreatedAt     time.Time
	// NotBefore is when the key may start signing: later than CreatedAt for a rotation,
	// so every replica publishes the key before any signs with it. Zero when adding
	// means CreatedAt; the store always returns it set.
	NotBefore time.Time
}

// ApproveCheck judges a pending request inside the transaction that would approve it,
// so a policy (where the approver is, how many devices are linked) holds against
// concurrent approvals: a non-nil error aborts the approval, records nothing and is
// returned as is. linked counts the approving account's live links to d's client, read
// in the same transaction.
type ApproveCheck func(d DeviceAuth, linked func() (int, error)) error

// Store is everything linkd persists. Every method that changes state is atomic (one
// transaction), so a crash at any point leaves either the old or the new state.
type Store interface {
	Health(ctx context.Context) error
	Close() error

	CreateUser(ctx context.Context, u User) error // ErrDuplicate if the username is taken
	UserByUsername(ctx context.Context, username string) (User, error)
	UserBySubject(ctx context.Context, subject string) (User, error)
	SetUserTOTP(ctx context.Context, subject, secret string) error
	// ListUsers returns every account, by username.
	ListUsers(ctx context.Context) ([]User, error)

	UpsertClient(ctx context.Context, c Client) error
	ClientByID(ctx context.Context, id string) (Client, error)
	// ListClients returns every registered client (not the built-in ones), by id.
	ListClients(ctx context.Context) ([]Client, error)

	// CreateDeviceAuth stores a new pending request; ErrDuplicateUserCode when the user
	// code clashes with one that is not yet expired at d.CreatedAt (the caller retries
	// with a new code). An expired request holding the same code is deleted.
	CreateDeviceAuth(ctx context.Context, d DeviceAuth) error
	// CreateDeviceAuthCapped is CreateDeviceAuth under caps, counted at d.CreatedAt for
	// d.RequestIP and d.ClientID in the same transaction: ErrLimited when over one. It
	// also deletes a few pending or denied requests that expired more than caps.Keep ago.
	CreateDeviceAuthCapped(ctx context.Context, d DeviceAuth, caps RequestCaps) error
	// DeviceAuthByUserCode returns the request in any state, expired or not, until it is
	// purged, so callers can tell expired and used codes from invalid ones.
	DeviceAuthByUserCode(ctx context.Context, userCode string) (DeviceAuth, error)
	// DeviceAuthByDeviceCode reads clientID's request by device code without recording
	// anything (a device's poll is a read), in any state and even expired until purged;
	// ErrNotFound when unknown or issued to another client.
	DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (DeviceAuth, error)
	// ApproveDeviceAuth turns a pending, unexpired request into a device grant named
	// name (else the device's own name, else the client's name) in one transaction.
	// ErrNotFound; ErrAlreadyUsed when not pending (checked first); ErrExpired.
	ApproveDeviceAuth(ctx context.Context, userCode, subject, name string, now time.Time) (Grant, error)
	// DenyDeviceAuth marks a pending, unexpired request denied. Same errors as approve.
	DenyDeviceAuth(ctx context.Context, userCode, subject string, now time.Time) error
	// ApproveUserCode is ApproveDeviceAuth behind code-lookup limits, in one
	// transaction: when a limit is reached it does and records nothing and returns the
	// wait (> 0); when the code is unknown, used or expired it records one attempt at now
	// under each distinct limit key (as ReserveAttempt) and commits that before returning
	// the error; a success or any other error records nothing. check (may be nil) judges
	// the pending request inside that transaction before anything is written.
	ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []AttemptLimit, now time.Time, check ApproveCheck) (Grant, time.Duration, error)
	// DenyUserCode is DenyDeviceAuth behind code-lookup limits as ApproveUserCode; it
	// returns the request as it was before the denial.
	DenyUserCode(ctx context.Context, userCode, subject string, limits []AttemptLimit, now time.Time) (DeviceAuth, time.Duration, error)
	// PendingUserCode returns the pending request holding userCode behind code-lookup
	// limits as ApproveUserCode: ErrNotFound, ErrAlreadyUsed when not pending (checked
	// first), ErrExpired when expired at now, each counted.
	PendingUserCode(ctx context.Context, userCode string, limits []AttemptLimit, now time.Time) (DeviceAuth, time.Duration, error)
	// NearbyDeviceAuths returns at most limit requests that are pending and unexpired at
	// now and were made from network (NetworkKey of their RequestIP), newest first.
	NearbyDeviceAuths(ctx context.Context, network string, now time.Time, limit int) ([]DeviceAuth, error)
	// CollectDeviceTokens hands clientID's approved request its tokens in one
	// transaction: the request becomes consumed, tokens are stored (their GrantID,
	// Subject and AuthTime taken from the request) and the grant is marked seen at now
	// from ip, so a crash leaves either an approved request or a device with tokens.
	// A repeat for a request consumed less than window ago, whose earlier refresh token
	// was never used (the device never got that answer), revokes the earlier answer's
	// tokens and stores these instead. It returns the request as consumed.
	// ErrAlreadyUsed when the request is not approved (or consumed, outside those
	// terms); ErrNotFound for an unknown code or when the grant was deleted before the
	// device collected it (the request then becomes denied).
	CollectDeviceTokens(ctx context.Context, clientID, deviceCode string, tokens DeviceTokens, ip string, now time.Time, window time.Duration) (DeviceAuth, error)

	CreateGrant(ctx context.Context, g Grant) error
	// GrantByID returns a grant; subject "" matches any owner.
	GrantByID(ctx context.Context, subject, id string) (Grant, error)
	// ListGrants returns the subject's grants of one flow, newest first.
	ListGrants(ctx context.Context, subject string, flow GrantFlow) ([]Grant, error)
	RenameGrant(ctx context.Context, subject, id, name string) (Grant, error)
	// DeleteGrant removes a grant and every access and refresh token of it, and returns
	// the grant as it was. Like every delete, ErrNotFound when there was nothing to delete.
	DeleteGrant(ctx context.Context, subject, id string) (Grant, error)
	// DeleteIdleGrants deletes, in one transaction, up to limit device grants of
	// clientID last used (LastSeenAt, else CreatedAt) before before, oldest first, with
	// every token of them, and returns them as they were.
	DeleteIdleGrants(ctx context.Context, clientID string, before time.Time, limit int) ([]Grant, error)
	// TouchGrant records a use of the grant at now from ip ("" keeps the last IP).
	TouchGrant(ctx context.Context, id, ip string, now time.Time) error

	CreateAccessToken(ctx context.Context, t AccessToken) error
	// AccessTokenByID returns ErrNotFound for unknown, revoked or expired-at-now tokens.
	AccessTokenByID(ctx context.Context, id string, now time.Time) (AccessToken, error)
	// DeleteAccessToken revokes one access token; ErrNotFound when there was none.
	DeleteAccessToken(ctx context.Context, id string) error

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshTokenByToken looks a refresh token up for use at now: a live one, or one
	// rotated less than grace ago whose successor was never used (its answer was lost;
	// the caller rotates it again). Any other rotated token is reuse: its grant is
	// deleted and ErrRefreshReused returned with the token's record, so the caller can
	// name the client and link. ErrNotFound when unknown or expired.
	RefreshTokenByToken(ctx context.Context, token string, now time.Time, grace time.Duration) (RefreshToken, error)
	// RotateRefreshToken marks old used and stores next and access (issued together),
	// atomically; an empty GrantID in next or access means old's grant. When old was
	// rotated less than grace before next.CreatedAt and its successor was never used,
	// that successor and its access token are revoked and next replaces them (a retry
	// of a lost answer). Any other rotated old is reuse: ErrRefreshReused, grant
	// deleted. ErrNotFound when old is unknown.
	RotateRefreshToken(ctx context.Context, old string, next RefreshToken, access AccessToken, grace time.Duration) error
	// RevokeRefreshToken deletes the grant the token belongs to (RFC 7009 §2.1);
	// ErrNotFound when the token is unknown (so the caller can try it as an access token).
	RevokeRefreshToken(ctx context.Context, token string) error

	CreateAuthRequest(ctx context.Context, a AuthRequest) error
	// CreateAuthRequestCapped is CreateAuthRequest under caps (waiting = not done),
	// counted at a.CreatedAt for a.RequestIP and a.ClientID in the same transaction:
	// ErrLimited when over one. It also deletes a few requests never signed in that
	// expired more than caps.Keep ago.
	CreateAuthRequestCapped(ctx context.Context, a AuthRequest, caps RequestCaps) error
	AuthRequestByID(ctx context.Context, id string) (AuthRequest, error)
	// AuthRequestByCode claims a code: it returns the request and marks the code used in
	// one transaction, so a second claim (even a concurrent one) gets ErrNotFound.
	AuthRequestByCode(ctx context.Context, code string) (AuthRequest, error)
	// SaveAuthCode issues a request's one code; ErrAlreadyUsed when it had one already.
	SaveAuthCode(ctx context.Context, id, code string) error
	CompleteAuthRequest(ctx context.Context, id, subject string, authTime time.Time, amr []string) error
	// DeleteAuthRequest deletes a request and its code; ErrNotFound when there was none.
	DeleteAuthRequest(ctx context.Context, id string) error

	// SigningKeys returns the keys that open with the store's secrets key, newest
	// (by CreatedAt, then by insertion) first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	AddSigningKey(ctx context.Context, k SigningKey) error
	// EnsureSigningKey adds k only if no stored key opens with the store's secrets key
	// and returns SigningKeys' answer, in one transaction, so replicas starting at once
	// on an empty database agree on one first key.
	EnsureSigningKey(ctx context.Context, k SigningKey) ([]SigningKey, error)
	// RetireSigningKeys deletes every signing key replaced by a newer key whose NotBefore
	// is before before (so tokens it signed have expired) and reports how many; the
	// newest stays.
	RetireSigningKeys(ctx context.Context, before time.Time) (int, error)

	// AddSignOut records that a web session was signed out, until expires (the session's
	// own expiry); records expired at now are dropped.
	AddSignOut(ctx context.Context, sessionID string, expires, now time.Time) error
	// SignedOut reports whether a web session was signed out (and its record is live at now).
	SignedOut(ctx context.Context, sessionID string, now time.Time) (bool, error)

	// AddFailure counts one failed user-code lookup against key (e.g. "sub:…", "ip:…")
	// and returns how many failures key has had since since. Shared by API and web pages.
	AddFailure(ctx context.Context, key string, now, since time.Time) (int, error)
	// CountFailures returns key's failures since since without adding one.
	CountFailures(ctx context.Context, key string, since time.Time) (int, error)
	// ReserveAttempt records one attempt at now under every limit's key when none is
	// over its limit, counting and recording in one transaction so that concurrent
	// callers never get more attempts than the limits allow; otherwise it records
	// nothing and returns how long until the attempt would be allowed (> 0).
	ReserveAttempt(ctx context.Context, limits []AttemptLimit, now time.Time) (time.Duration, error)
	// ReleaseAttempt removes one attempt recorded at at under each of keys: a reserved
	// attempt that succeeded and should not count.
	ReleaseAttempt(ctx context.Context, keys []string, at time.Time) error
	// UseTOTPStep records that subject signed in with the one-time code of step; it
	// returns false (recording nothing) when a code of that step or a later one
	// already did, so no code is ever accepted twice (RFC 6238 §5.2).
	UseTOTPStep(ctx context.Context, subject string, step int64) (bool, error)

	// Purge deletes device authorizations, auth requests and tokens that expired before
	// before, and failure records from before before. before is a retention cutoff, not
	// "now": pass now minus the longest failure window, so expired codes still answer
	// "expired" for a while and rate limits keep counting. Grants are never purged.
	Purge(ctx context.Context, before time.Time) error
}

// AttemptLimit bounds the attempts recorded under Key (in the failures table): at most
// Max within Window and, once Free are in the window, each further one only Backoff
// after the latest, the wait doubling with every further attempt (Free or Backoff
// zero: no backoff).
type AttemptLimit struct {
	Key     string
	Max     int
	Window  time.Duration
	Free    int
	Backoff time.Duration
}

// Wait is how long from now until l allows one more attempt, given the attempts
// recorded under l.Key within l.Window before now (oldest first); 0 when it allows one
// now. Every store judges ReserveAttempt with it, so they agree to the nanosecond.
func (l AttemptLimit) Wait(ats []time.Time, now time.Time) time.Duration {
	n := len(ats)
	var wait time.Duration
	if l.Max > 0 && n >= l.Max {
		// The attempt that must leave the window for one more to fit; one at exactly
		// now-Window still counts.
		leaves := ats[n-l.Max].Add(l.Window + time.Nanosecond)
		wait = max(wait, leaves.Sub(now))
	}
	if l.Free > 0 && l.Backoff > 0 && n >= l.Free {
		delay := l.Window
		if shift := n - l.Free; shift < 30 {
			delay = min(delay, l.Backoff<<shift)
		}
		next := ats[n-1].Add(delay)
		wait = max(wait, next.Sub(now))
	}
	return wait
}
