package provider

import (
	"context"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// Store is the part of linkd's store the OpenID provider needs (store.Store has it
// all), so a second store can be checked against exactly what the provider uses.
type Store interface {
	Health(ctx context.Context) error

	// Accounts and clients, read only.
	UserByUsername(ctx context.Context, username string) (store.User, error)
	UserBySubject(ctx context.Context, subject string) (store.User, error)
	ClientByID(ctx context.Context, id string) (store.Client, error)

	// The device flow, from the device's side.
	CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error
	DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error)
	CollectDeviceTokens(ctx context.Context, clientID, deviceCode string, tokens store.DeviceTokens, ip string, now time.Time, window time.Duration) (store.DeviceAuth, error)

	// Authorization-code sign-ins of the app.
	CreateAuthRequestCapped(ctx context.Context, a store.AuthRequest, caps store.RequestCaps) error
	AuthRequestByID(ctx context.Context, id string) (store.AuthRequest, error)
	AuthRequestByCode(ctx context.Context, code string) (store.AuthRequest, error)
	SaveAuthCode(ctx context.Context, id, code string) error
	CompleteAuthRequest(ctx context.Context, id, subject string, authTime time.Time, amr []string) error
	DeleteAuthRequest(ctx context.Context, id string) error

	// Grants and tokens.
	CreateGrant(ctx context.Context, g store.Grant) error
	TouchGrant(ctx context.Context, id, ip string, now time.Time) error
	CreateAccessToken(ctx context.Context, t store.AccessToken) error
	AccessTokenByID(ctx context.Context, id string, now time.Time) (store.AccessToken, error)
	DeleteAccessToken(ctx context.Context, id string) error
	CreateRefreshToken(ctx context.Context, t store.RefreshToken) error
	RefreshTokenByToken(ctx context.Context, token string, now time.Time, grace time.Duration) (store.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, old string, next store.RefreshToken, access store.AccessToken, grace time.Duration) error
	RevokeRefreshToken(ctx context.Context, token string) error

	// Signing keys.
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	EnsureSigningKey(ctx context.Context, k store.SigningKey) ([]store.SigningKey, error)
}

var _ Store = store.Store(nil) // linkd's whole store serves as one
