package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// Store returns s with its hot operations timed and their failures counted
// (linkd_store_operation_duration_seconds and _errors_total); every other method is
// s's own. A nil Recorder returns s itself.
func (r *Recorder) Store(s store.Store) store.Store {
	if r == nil || s == nil {
		return s
	}
	return &timedStore{Store: s, r: r}
}

// timedStore times the hot operations of the store it embeds.
type timedStore struct {
	store.Store
	r *Recorder
}

// failed tells a fault (the database unreachable, a bug) from an answer the callers
// expect: not found, expired, used, taken, limited.
func failed(err error) bool {
	if err == nil {
		return false
	}
	for _, answer := range [...]error{store.ErrNotFound, store.ErrExpired, store.ErrAlreadyUsed, store.ErrDuplicate,
		store.ErrDuplicateUserCode, store.ErrLimited, store.ErrRefreshReused} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return !errors.Is(err, context.Canceled)
}

func (t *timedStore) Health(ctx context.Context) error {
	start := time.Now()
	err := t.Store.Health(ctx)
	t.r.StoreDone(OpHealth, start, failed(err))
	return err
}

func (t *timedStore) DeviceAuthByDeviceCode(ctx context.Context, clientID, deviceCode string) (store.DeviceAuth, error) {
	start := time.Now()
	d, err := t.Store.DeviceAuthByDeviceCode(ctx, clientID, deviceCode)
	t.r.StoreDone(OpDeviceAuthByDeviceCode, start, failed(err))
	return d, err
}

func (t *timedStore) CollectDeviceTokens(ctx context.Context, clientID, deviceCode string, tokens store.DeviceTokens, ip string, now time.Time, window time.Duration) (store.DeviceAuth, error) {
	start := time.Now()
	d, err := t.Store.CollectDeviceTokens(ctx, clientID, deviceCode, tokens, ip, now, window)
	t.r.StoreDone(OpCollectDeviceTokens, start, failed(err))
	return d, err
}

func (t *timedStore) CreateDeviceAuthCapped(ctx context.Context, d store.DeviceAuth, caps store.RequestCaps) error {
	start := time.Now()
	err := t.Store.CreateDeviceAuthCapped(ctx, d, caps)
	t.r.StoreDone(OpCreateDeviceAuth, start, failed(err))
	return err
}

func (t *timedStore) PendingUserCode(ctx context.Context, userCode string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error) {
	start := time.Now()
	d, wait, err := t.Store.PendingUserCode(ctx, userCode, limits, now)
	t.r.StoreDone(OpPendingUserCode, start, failed(err))
	return d, wait, err
}

func (t *timedStore) ApproveUserCode(ctx context.Context, userCode, subject, name string, limits []store.AttemptLimit, now time.Time, check store.ApproveCheck) (store.Grant, time.Duration, error) {
	start := time.Now()
	g, wait, err := t.Store.ApproveUserCode(ctx, userCode, subject, name, limits, now, check)
	t.r.StoreDone(OpApproveUserCode, start, failed(err))
	return g, wait, err
}

func (t *timedStore) DenyUserCode(ctx context.Context, userCode, subject string, limits []store.AttemptLimit, now time.Time) (store.DeviceAuth, time.Duration, error) {
	start := time.Now()
	d, wait, err := t.Store.DenyUserCode(ctx, userCode, subject, limits, now)
	t.r.StoreDone(OpDenyUserCode, start, failed(err))
	return d, wait, err
}

func (t *timedStore) ReserveAttempt(ctx context.Context, limits []store.AttemptLimit, now time.Time) (time.Duration, error) {
	start := time.Now()
	wait, err := t.Store.ReserveAttempt(ctx, limits, now)
	t.r.StoreDone(OpReserveAttempt, start, failed(err))
	return wait, err
}

func (t *timedStore) ReleaseAttempt(ctx context.Context, keys []string, at time.Time) error {
	start := time.Now()
	err := t.Store.ReleaseAttempt(ctx, keys, at)
	t.r.StoreDone(OpReleaseAttempt, start, failed(err))
	return err
}

func (t *timedStore) AccessTokenByID(ctx context.Context, id string, now time.Time) (store.AccessToken, error) {
	start := time.Now()
	a, err := t.Store.AccessTokenByID(ctx, id, now)
	t.r.StoreDone(OpAccessTokenByID, start, failed(err))
	return a, err
}

func (t *timedStore) RefreshTokenByToken(ctx context.Context, token string, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	start := time.Now()
	rt, err := t.Store.RefreshTokenByToken(ctx, token, now, grace)
	t.r.StoreDone(OpRefreshToken, start, failed(err))
	return rt, err
}

func (t *timedStore) UserByUsername(ctx context.Context, username string) (store.User, error) {
	start := time.Now()
	u, err := t.Store.UserByUsername(ctx, username)
	t.r.StoreDone(OpUserByUsername, start, failed(err))
	return u, err
}

func (t *timedStore) UserBySubject(ctx context.Context, subject string) (store.User, error) {
	start := time.Now()
	u, err := t.Store.UserBySubject(ctx, subject)
	t.r.StoreDone(OpUserBySubject, start, failed(err))
	return u, err
}

func (t *timedStore) ClientByID(ctx context.Context, id string) (store.Client, error) {
	start := time.Now()
	c, err := t.Store.ClientByID(ctx, id)
	t.r.StoreDone(OpClientByID, start, failed(err))
	return c, err
}

func (t *timedStore) CreateAuthRequestCapped(ctx context.Context, a store.AuthRequest, caps store.RequestCaps) error {
	start := time.Now()
	err := t.Store.CreateAuthRequestCapped(ctx, a, caps)
	t.r.StoreDone(OpCreateAuthRequest, start, failed(err))
	return err
}

func (t *timedStore) ListGrants(ctx context.Context, subject string, flow store.GrantFlow) ([]store.Grant, error) {
	start := time.Now()
	gs, err := t.Store.ListGrants(ctx, subject, flow)
	t.r.StoreDone(OpListGrants, start, failed(err))
	return gs, err
}
