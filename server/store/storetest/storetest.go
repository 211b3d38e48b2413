// Package storetest is a conformance suite for store.Store implementations, so every
// backend (SQLite now, PostgreSQL later) is held to the same semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// Run runs the conformance suite. open must return a fresh, empty store for each call
// and arrange for it to be closed (t.Cleanup); Run never closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Health", testHealth},
		{"Users", testUsers},
		{"Clients", testClients},
		{"ClientPolicy", testClientPolicy},
		{"DeleteIdleGrants", testDeleteIdleGrants},
		{"DeviceAuthCreate", testDeviceAuthCreate},
		{"DeviceAuthUserCodeReuse", testDeviceAuthUserCodeReuse},
		{"PollWrongClient", testPollWrongClient},
		{"DeviceAuthByDeviceCode", testDeviceAuthByDeviceCode},
		{"Approve", testApprove},
		{"ApproveNaming", testApproveNaming},
		{"ApproveErrors", testApproveErrors},
		{"Deny", testDeny},
		{"NearbyDeviceAuths", testNearbyDeviceAuths},
		{"ConsumeOnce", testConsumeOnce},
		{"ConsumeAfterUnlink", testConsumeAfterUnlink},
		{"CollectStoresTokens", testCollectStoresTokens},
		{"CollectLostAnswer", testCollectLostAnswer},
		{"CollectAfterAnswerUsed", testCollectAfterAnswerUsed},
		{"ConcurrentCollectRepeats", testConcurrentCollectRepeats},
		{"ConcurrentApprove", testConcurrentApprove},
		{"ConcurrentConsume", testConcurrentConsume},
		{"CanceledContext", testCanceledContext},
		{"Grants", testGrants},
		{"DeleteGrantCascades", testDeleteGrantCascades},
		{"AccessTokens", testAccessTokens},
		{"RefreshRotation", testRefreshRotation},
		{"RefreshReuseByLookup", testRefreshReuseByLookup},
		{"RotateAtomic", testRotateAtomic},
		{"RefreshLostAnswer", testRefreshLostAnswer},
		{"RefreshGraceEnds", testRefreshGraceEnds},
		{"RefreshExpired", testRefreshExpired},
		{"RevokeRefreshToken", testRevokeRefreshToken},
		{"AuthRequests", testAuthRequests},
		{"AuthCodeClaimedOnce", testAuthCodeClaimedOnce},
		{"DeviceAuthCaps", testDeviceAuthCaps},
		{"DeviceAuthCapsAnyOrder", testDeviceAuthCapsAnyOrder},
		{"DeviceAuthCapsConcurrent", testDeviceAuthCapsConcurrent},
		{"AuthRequestCaps", testAuthRequestCaps},
		{"SigningKeys", testSigningKeys},
		{"RetireSigningKeys", testRetireSigningKeys},
		{"EnsureSigningKey", testEnsureSigningKey},
		{"EnsureSigningKeyConcurrent", testEnsureSigningKeyConcurrent},
		{"RetireSigningKeysNotBefore", testRetireSigningKeysNotBefore},
		{"SignOuts", testSignOuts},
		{"Failures", testFailures},
		{"ReserveAttempt", testReserveAttempt},
		{"ReserveAttemptOutOfOrder", testReserveAttemptOutOfOrder},
		{"ReserveAttemptConcurrent", testReserveAttemptConcurrent},
		{"ReserveAttemptBackoff", testReserveAttemptBackoff},
		{"UserCodeLimits", testUserCodeLimits},
		{"UserCodeLimitsConcurrent", testUserCodeLimitsConcurrent},
		{"ApproveCheck", testApproveCheck},
		{"UseTOTPStep", testUseTOTPStep},
		{"ConcurrentRotateRetries", testConcurrentRotateRetries},
		{"ConcurrentRotateNoGrace", testConcurrentRotateNoGrace},
		{"ConcurrentTOTPStep", testConcurrentTOTPStep},
		{"ConcurrentCaps", testConcurrentCaps},
		{"Purge", testPurge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// base is a fixed, round instant the tests count from, so results never depend on the
// wall clock.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

const tvClient = "tv-app"

func seedClient(t *testing.T, s store.Store) {
	t.Helper()
	must(t, s.UpsertClient(context.Background(), store.Client{
		ID: tvClient, Name: "Living Room TV App", Scopes: []string{"openid", "profile"},
		GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code"}, CreatedAt: base,
	}))
}

// newDeviceAuth returns a pending request created at base that lives ten minutes.
func newDeviceAuth(n int) store.DeviceAuth {
	return store.DeviceAuth{
		DeviceCode: fmt.Sprintf("device-code-%d-0123456789abcdef", n),
		UserCode:   fmt.Sprintf("BCDF%04d", n), // not a valid alphabet code, but stores must not care
		ClientID:   tvClient,
		Scopes:     []string{"openid", "profile"},
		Device:     devices.DeviceInfo{Name: "Bedroom TV", Model: "Acme 55X", Kind: devices.KindTV},
		RequestIP:  "192.0.2.10",
		CreatedAt:  base,
		ExpiresAt:  base.Add(10 * time.Minute),
		Interval:   5 * time.Second,
		State:      store.DeviceAuthPending,
	}
}

func createDeviceAuth(t *testing.T, s store.Store, n int) store.DeviceAuth {
	t.Helper()
	d := newDeviceAuth(n)
	must(t, s.CreateDeviceAuth(context.Background(), d))
	return d
}

func testHealth(t *testing.T, s store.Store) {
	must(t, s.Health(context.Background()))
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := store.User{Subject: "sub-1", Username: "Alice", DisplayName: "Alice A.", Email: "alice@example.com",
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: base}
	must(t, s.CreateUser(ctx, u))
	wantErr(t, s.CreateUser(ctx, store.User{Subject: "sub-2", Username: "alice", CreatedAt: base}), store.ErrDuplicate)
	wantErr(t, s.CreateUser(ctx, store.User{Subject: "sub-1", Username: "bob", CreatedAt: base}), store.ErrDuplicate)

	got, err := s.UserByUsername(ctx, "ALICE")
	must(t, err)
	if got.Subject != u.Subject || got.Username != "Alice" || got.DisplayName != u.DisplayName ||
		got.Email != u.Email || got.PasswordHash != u.PasswordHash || got.TOTPSecret != "" {
		t.Errorf("UserByUsername = %+v, want %+v", got, u)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, base)
	_, err = s.UserByUsername(ctx, "carol")
	wantErr(t, err, store.ErrNotFound)

	must(t, s.SetUserTOTP(ctx, "sub-1", "JBSWY3DPEHPK3PXP"))
	got, err = s.UserBySubject(ctx, "sub-1")
	must(t, err)
	if got.TOTPSecret != "JBSWY3DPEHPK3PXP" || got.Username != "Alice" {
		t.Errorf("after SetUserTOTP: %+v", got)
	}
	must(t, s.SetUserTOTP(ctx, "sub-1", ""))
	got, err = s.UserBySubject(ctx, "sub-1")
	must(t, err)
	if got.TOTPSecret != "" {
		t.Errorf("TOTP not cleared: %q", got.TOTPSecret)
	}
	wantErr(t, s.SetUserTOTP(ctx, "nobody", "X"), store.ErrNotFound)
	_, err = s.UserBySubject(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound)

	// ListUsers: every account, by username whatever its case.
	must(t, s.CreateUser(ctx, store.User{Subject: "sub-3", Username: "bob", CreatedAt: base}))
	must(t, s.CreateUser(ctx, store.User{Subject: "sub-4", Username: "Aaron", CreatedAt: base}))
	must(t, s.SetUserTOTP(ctx, "sub-3", "JBSWY3DPEHPK3PXP"))
	list, err := s.ListUsers(ctx)
	must(t, err)
	var names []string
	for _, u := range list {
		names = append(names, u.Username)
	}
	if strings.Join(names, ",") != "Aaron,Alice,bob" || list[2].TOTPSecret == "" || list[1].Email != u.Email {
		t.Errorf("ListUsers = %v (%+v)", names, list)
	}
}

func testClients(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := store.Client{ID: "linkdesk", Name: "Linkdesk", LogoURI: "https://example.com/l.png",
		Scopes: []string{"openid", "offline_access"}, RedirectURIs: []string{"http://127.0.0.1/callback"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, CreatedAt: base}
	must(t, s.UpsertClient(ctx, c))
	got, err := s.ClientByID(ctx, "linkdesk")
	must(t, err)
	if got.ID != c.ID || got.Name != c.Name || got.LogoURI != c.LogoURI || got.SecretHash != "" {
		t.Errorf("ClientByID = %+v", got)
	}
	sameList(t, "Scopes", got.Scopes, c.Scopes)
	sameList(t, "RedirectURIs", got.RedirectURIs, c.RedirectURIs)
	sameList(t, "GrantTypes", got.GrantTypes, c.GrantTypes)
	sameTime(t, "CreatedAt", got.CreatedAt, base)

	c.Name, c.Scopes, c.SecretHash = "Linkdesk 2", []string{"openid"}, "hash"
	must(t, s.UpsertClient(ctx, c))
	got, err = s.ClientByID(ctx, "linkdesk")
	must(t, err)
	if got.Name != "Linkdesk 2" || got.SecretHash != "hash" {
		t.Errorf("after upsert: %+v", got)
	}
	sameList(t, "Scopes", got.Scopes, []string{"openid"})
	_, err = s.ClientByID(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
}

func testDeviceAuthCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	d := createDeviceAuth(t, s, 1)
	got, err := s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	if got.DeviceCode != "" {
		t.Errorf("DeviceCode read back as %q; stores keep only a hash", got.DeviceCode)
	}
	if got.UserCode != d.UserCode || got.ClientID != d.ClientID || got.Device != d.Device ||
		got.RequestIP != d.RequestIP || got.Interval != d.Interval || got.State != store.DeviceAuthPending ||
		got.Subject != "" || got.GrantID != "" || !got.AuthTime.IsZero() {
		t.Errorf("DeviceAuthByUserCode = %+v, want %+v", got, d)
	}
	sameList(t, "Scopes", got.Scopes, d.Scopes)
	sameTime(t, "CreatedAt", got.CreatedAt, d.CreatedAt)
	sameTime(t, "ExpiresAt", got.ExpiresAt, d.ExpiresAt)

	_, err = s.DeviceAuthByUserCode(ctx, "ZZZZZZZZ")
	wantErr(t, err, store.ErrNotFound)

	// Same user code while the first is live: a clash the caller retries.
	d2 := newDeviceAuth(2)
	d2.UserCode = d.UserCode
	d2.CreatedAt = base.Add(time.Minute)
	wantErr(t, s.CreateDeviceAuth(ctx, d2), store.ErrDuplicateUserCode)

	// The clash did not disturb the first request.
	got, err = s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	if got.ClientID != d.ClientID || got.State != store.DeviceAuthPending {
		t.Errorf("after clash: %+v", got)
	}
}

func testDeviceAuthUserCodeReuse(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	_, err := s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", base.Add(time.Minute))
	must(t, err)

	// Once the first request has expired its user code may be handed out again.
	d2 := newDeviceAuth(2)
	d2.UserCode = d.UserCode
	d2.CreatedAt = d.ExpiresAt
	d2.ExpiresAt = d.ExpiresAt.Add(10 * time.Minute)
	must(t, s.CreateDeviceAuth(ctx, d2))
	got, err := s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	if got.State != store.DeviceAuthPending {
		t.Errorf("reused code shows state %s, want pending", got.State)
	}
	sameTime(t, "ExpiresAt", got.ExpiresAt, d2.ExpiresAt)
	// The old device code is gone with its row.
	_, err = s.DeviceAuthByDeviceCode(ctx, tvClient, d.DeviceCode)
	wantErr(t, err, store.ErrNotFound)
	res, err := s.DeviceAuthByDeviceCode(ctx, tvClient, d2.DeviceCode)
	must(t, err)
	if res.UserCode != d.UserCode {
		t.Errorf("poll of new code found %+v", res)
	}
}

func testPollWrongClient(t *testing.T, s store.Store) {
	ctx := context.Background()
	d := createDeviceAuth(t, s, 1)
	_, err := s.DeviceAuthByDeviceCode(ctx, "other-client", d.DeviceCode)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.DeviceAuthByDeviceCode(ctx, tvClient, "unknown-device-code")
	wantErr(t, err, store.ErrNotFound)
	_, err = collect(s, "other-client", d.DeviceCode, "c1", base.Add(time.Minute), 0)
	wantErr(t, err, store.ErrNotFound)
}

// testDeviceAuthByDeviceCode: a device's poll is a read, of its own client's request.
func testDeviceAuthByDeviceCode(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	got, err := s.DeviceAuthByDeviceCode(ctx, tvClient, d.DeviceCode)
	must(t, err)
	if got.UserCode != d.UserCode || got.State != store.DeviceAuthPending || got.Interval != d.Interval ||
		got.DeviceCode != "" {
		t.Fatalf("DeviceAuthByDeviceCode = %+v", got)
	}
	sameTime(t, "ExpiresAt", got.ExpiresAt, d.ExpiresAt)
	_, err = s.DeviceAuthByDeviceCode(ctx, "other-client", d.DeviceCode)
	wantErr(t, err, store.ErrNotFound)
}

func testApprove(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	now := base.Add(2 * time.Minute)
	g, err := s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "Kids' TV", now)
	must(t, err)
	if len(g.ID) < 16 {
		t.Errorf("grant ID %q is too short to be unguessable", g.ID)
	}
	if g.Subject != "sub-1" || g.ClientID != tvClient || g.Flow != store.FlowDevice || g.Name != "Kids' TV" ||
		g.Device != d.Device || !g.LastSeenAt.IsZero() {
		t.Errorf("approved grant = %+v", g)
	}
	sameList(t, "grant Scopes", g.Scopes, d.Scopes)
	sameTime(t, "grant AuthTime", g.AuthTime, now)
	sameTime(t, "grant CreatedAt", g.CreatedAt, now)

	stored, err := s.GrantByID(ctx, "sub-1", g.ID)
	must(t, err)
	if stored.Name != g.Name || stored.Flow != store.FlowDevice || stored.Device != d.Device {
		t.Errorf("stored grant = %+v", stored)
	}

	got, err := s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	if got.State != store.DeviceAuthApproved || got.Subject != "sub-1" || got.GrantID != g.ID {
		t.Errorf("after approve: %+v", got)
	}
	sameTime(t, "AuthTime", got.AuthTime, now)

	res, err := s.DeviceAuthByDeviceCode(ctx, tvClient, d.DeviceCode)
	must(t, err)
	if res.State != store.DeviceAuthApproved || res.GrantID != g.ID || res.Subject != "sub-1" {
		t.Errorf("poll after approve: %+v", res)
	}
	list, err := s.ListGrants(ctx, "sub-1", store.FlowDevice)
	must(t, err)
	if len(list) != 1 || list[0].ID != g.ID {
		t.Errorf("ListGrants = %+v", list)
	}
}

func testApproveNaming(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	now := base.Add(time.Minute)

	d := createDeviceAuth(t, s, 1)
	g, err := s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", now)
	must(t, err)
	if g.Name != d.Device.Name {
		t.Errorf("name = %q, want the device's own %q", g.Name, d.Device.Name)
	}

	d2 := newDeviceAuth(2)
	d2.Device.Name = ""
	must(t, s.CreateDeviceAuth(ctx, d2))
	g, err = s.ApproveDeviceAuth(ctx, d2.UserCode, "sub-1", "", now)
	must(t, err)
	if g.Name != "Living Room TV App" {
		t.Errorf("name = %q, want the client's name", g.Name)
	}
}

func testApproveErrors(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)

	_, err := s.ApproveDeviceAuth(ctx, "ZZZZZZZZ", "sub-1", "", base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", d.ExpiresAt)
	wantErr(t, err, store.ErrExpired)
	wantErr(t, s.DenyDeviceAuth(ctx, d.UserCode, "sub-1", d.ExpiresAt.Add(time.Second)), store.ErrExpired)
	if list, err := s.ListGrants(ctx, "sub-1", store.FlowDevice); err != nil || len(list) != 0 {
		t.Fatalf("expired approval left grants %v (%v)", list, err)
	}

	_, err = s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", base.Add(time.Minute))
	must(t, err)
	_, err = s.ApproveDeviceAuth(ctx, d.UserCode, "sub-2", "", base.Add(2*time.Minute))
	wantErr(t, err, store.ErrAlreadyUsed)
	wantErr(t, s.DenyDeviceAuth(ctx, d.UserCode, "sub-2", base.Add(2*time.Minute)), store.ErrAlreadyUsed)
	if list, err := s.ListGrants(ctx, "sub-2", store.FlowDevice); err != nil || len(list) != 0 {
		t.Fatalf("second approval made grants %v (%v)", list, err)
	}
	got, err := s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	if got.Subject != "sub-1" || got.State != store.DeviceAuthApproved {
		t.Errorf("after refused second approval: %+v", got)
	}
}

func testDeny(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	must(t, s.DenyDeviceAuth(ctx, d.UserCode, "sub-1", base.Add(time.Minute)))
	got, err := s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	if got.State != store.DeviceAuthDenied || got.Subject != "sub-1" || got.GrantID != "" {
		t.Errorf("after deny: %+v", got)
	}
	res, err := s.DeviceAuthByDeviceCode(ctx, tvClient, d.DeviceCode)
	must(t, err)
	if res.State != store.DeviceAuthDenied {
		t.Errorf("poll after deny: state %s", res.State)
	}
	_, err = s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", base.Add(2*time.Minute))
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = collect(s, tvClient, d.DeviceCode, "c2", base.Add(time.Minute), 0)
	wantErr(t, err, store.ErrAlreadyUsed)
	wantErr(t, s.DenyDeviceAuth(ctx, "ZZZZZZZZ", "sub-1", base), store.ErrNotFound)
}

func testConsumeOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	_, err := collect(s, tvClient, d.DeviceCode, "c3", base.Add(time.Minute), 0)
	wantErr(t, err, store.ErrAlreadyUsed) // pending: nothing to collect yet
	g, err := s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", base.Add(time.Minute))
	must(t, err)
	got, err := collect(s, tvClient, d.DeviceCode, "c4", base.Add(time.Minute), 0)
	must(t, err)
	if got.State != store.DeviceAuthConsumed || got.GrantID != g.ID || got.Subject != "sub-1" ||
		got.ClientID != tvClient || got.DeviceCode != "" {
		t.Errorf("ConsumeDeviceAuth = %+v", got)
	}
	sameList(t, "Scopes", got.Scopes, d.Scopes)
	_, err = collect(s, tvClient, d.DeviceCode, "c5", base.Add(time.Minute), 0)
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = collect(s, tvClient, "unknown-device-code", "c6", base.Add(time.Minute), 0)
	wantErr(t, err, store.ErrNotFound)
	res, err := s.DeviceAuthByDeviceCode(ctx, tvClient, d.DeviceCode)
	must(t, err)
	if res.State != store.DeviceAuthConsumed {
		t.Errorf("poll after consume: state %s", res.State)
	}
}

func testConsumeAfterUnlink(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	g, err := s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", base.Add(time.Minute))
	must(t, err)
	_, err = s.DeleteGrant(ctx, "sub-1", g.ID)
	must(t, err)
	// The person unlinked before the device collected its tokens: no tokens, ever.
	_, err = collect(s, tvClient, d.DeviceCode, "c7", base.Add(time.Minute), 0)
	if err == nil {
		t.Fatal("consumed a request whose grant was deleted")
	}
	_, err = collect(s, tvClient, d.DeviceCode, "c8", base.Add(time.Minute), 0)
	if err == nil {
		t.Fatal("second consume succeeded")
	}
}

// testConcurrentApprove races many approvals of one code: exactly one may win.
func testConcurrentApprove(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.ApproveDeviceAuth(ctx, d.UserCode, fmt.Sprintf("sub-%d", i), "", base.Add(time.Minute))
		})
	}
	wg.Wait()
	wins := 0
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = fmt.Sprintf("sub-%d", i)
		case !errors.Is(err, store.ErrAlreadyUsed):
			t.Errorf("approval %d: %v, want success or ErrAlreadyUsed", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d approvals won, want exactly 1", wins)
	}
	got, err := s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	if got.Subject != winner {
		t.Errorf("approved by %q, but %q won", got.Subject, winner)
	}
	total := 0
	for i := range n {
		list, err := s.ListGrants(ctx, fmt.Sprintf("sub-%d", i), store.FlowDevice)
		must(t, err)
		total += len(list)
	}
	if total != 1 {
		t.Errorf("%d grants created, want 1", total)
	}
}

// testConcurrentConsume races many consumes of one approved code: exactly one may win.
func testConcurrentConsume(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	_, err := s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", base.Add(time.Minute))
	must(t, err)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = collect(s, tvClient, d.DeviceCode, fmt.Sprint(i), base.Add(time.Minute), 0) })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrAlreadyUsed):
			t.Errorf("consume %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d consumes won, want exactly 1", wins)
	}
}

// testCanceledContext checks that a call with a dead context fails and changes nothing.
func testCanceledContext(t *testing.T, s store.Store) {
	seedClient(t, s)
	d := createDeviceAuth(t, s, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ApproveDeviceAuth(ctx, d.UserCode, "sub-1", "", base.Add(time.Minute)); err == nil {
		t.Fatal("approved with a canceled context")
	}
	got, err := s.DeviceAuthByUserCode(context.Background(), d.UserCode)
	must(t, err)
	if got.State != store.DeviceAuthPending {
		t.Errorf("state after canceled approval = %s", got.State)
	}
}

func newGrant(id, subject string, flow store.GrantFlow, created time.Time) store.Grant {
	return store.Grant{ID: id, Subject: subject, ClientID: tvClient, Scopes: []string{"openid"}, Flow: flow,
		Name: "TV " + id, Device: devices.DeviceInfo{Name: "TV", Model: "M", Kind: devices.KindTV},
		AuthTime: created, CreatedAt: created}
}

func testGrants(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, id := range []string{"g1", "g2", "g3"} {
		must(t, s.CreateGrant(ctx, newGrant(id, "sub-1", store.FlowDevice, base.Add(time.Duration(i)*time.Minute))))
	}
	// Same creation time as g3: creation order breaks the tie.
	must(t, s.CreateGrant(ctx, newGrant("g4", "sub-1", store.FlowDevice, base.Add(2*time.Minute))))
	must(t, s.CreateGrant(ctx, newGrant("app", "sub-1", store.FlowSignIn, base)))
	must(t, s.CreateGrant(ctx, newGrant("other", "sub-2", store.FlowDevice, base)))
	wantErr(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)), store.ErrDuplicate)

	list, err := s.ListGrants(ctx, "sub-1", store.FlowDevice)
	must(t, err)
	var ids []string
	for _, g := range list {
		ids = append(ids, g.ID)
	}
	if want := []string{"g4", "g3", "g2", "g1"}; !slices.Equal(ids, want) {
		t.Errorf("ListGrants = %v, want %v (newest first)", ids, want)
	}
	list, err = s.ListGrants(ctx, "sub-1", store.FlowSignIn)
	must(t, err)
	if len(list) != 1 || list[0].ID != "app" {
		t.Errorf("sign-in grants = %+v", list)
	}
	list, err = s.ListGrants(ctx, "nobody", store.FlowDevice)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("grants of nobody = %+v", list)
	}

	g, err := s.GrantByID(ctx, "sub-1", "g2")
	must(t, err)
	want := newGrant("g2", "sub-1", store.FlowDevice, base.Add(time.Minute))
	if g.ID != want.ID || g.Subject != want.Subject || g.ClientID != want.ClientID || g.Flow != want.Flow ||
		g.Name != want.Name || g.Device != want.Device || !g.LastSeenAt.IsZero() || g.LastIP != "" {
		t.Errorf("GrantByID = %+v, want %+v", g, want)
	}
	sameList(t, "Scopes", g.Scopes, want.Scopes)
	sameTime(t, "AuthTime", g.AuthTime, want.AuthTime)
	sameTime(t, "CreatedAt", g.CreatedAt, want.CreatedAt)
	_, err = s.GrantByID(ctx, "", "g2")
	must(t, err)
	_, err = s.GrantByID(ctx, "sub-2", "g2")
	wantErr(t, err, store.ErrNotFound)

	g, err = s.RenameGrant(ctx, "sub-1", "g2", "Den TV")
	must(t, err)
	if g.Name != "Den TV" || g.ID != "g2" {
		t.Errorf("RenameGrant = %+v", g)
	}
	_, err = s.RenameGrant(ctx, "sub-2", "g2", "Stolen")
	wantErr(t, err, store.ErrNotFound)
	g, err = s.GrantByID(ctx, "", "g2")
	must(t, err)
	if g.Name != "Den TV" {
		t.Errorf("name after foreign rename = %q", g.Name)
	}

	seen := base.Add(time.Hour)
	must(t, s.TouchGrant(ctx, "g2", "198.51.100.7", seen))
	must(t, s.TouchGrant(ctx, "g2", "", seen.Add(time.Minute)))
	g, err = s.GrantByID(ctx, "sub-1", "g2")
	must(t, err)
	sameTime(t, "LastSeenAt", g.LastSeenAt, seen.Add(time.Minute))
	if g.LastIP != "198.51.100.7" {
		t.Errorf("LastIP = %q", g.LastIP)
	}
	wantErr(t, s.TouchGrant(ctx, "nope", "", seen), store.ErrNotFound)

	_, err = s.DeleteGrant(ctx, "sub-2", "g2")
	wantErr(t, err, store.ErrNotFound)
	g, err = s.DeleteGrant(ctx, "sub-1", "g2")
	must(t, err)
	if g.ID != "g2" || g.Name != "Den TV" {
		t.Errorf("DeleteGrant returned %+v", g)
	}
	_, err = s.GrantByID(ctx, "", "g2")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.DeleteGrant(ctx, "sub-1", "g2")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.DeleteGrant(ctx, "", "g1") // "" matches any owner
	must(t, err)
}

func accessToken(id, grant string, expires time.Time) store.AccessToken {
	return store.AccessToken{ID: id, GrantID: grant, Subject: "sub-1", ClientID: tvClient,
		Scopes: []string{"openid", "profile"}, CreatedAt: base, ExpiresAt: expires}
}

func refreshToken(tok, grant string, expires time.Time) store.RefreshToken {
	return store.RefreshToken{Token: tok, GrantID: grant, Subject: "sub-1", ClientID: tvClient,
		Scopes: []string{"openid", "offline_access"}, AuthTime: base, AMR: []string{"pwd", "otp"},
		CreatedAt: base, ExpiresAt: expires}
}

func testDeleteGrantCascades(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	must(t, s.CreateGrant(ctx, newGrant("g2", "sub-1", store.FlowDevice, base)))
	later := base.Add(time.Hour)
	must(t, s.CreateAccessToken(ctx, accessToken("at1", "g1", later)))
	must(t, s.CreateAccessToken(ctx, accessToken("at2", "g2", later)))
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", later)))
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1b", "g1", later)))
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt2", "g2", later)))

	_, err := s.DeleteGrant(ctx, "sub-1", "g1")
	must(t, err)
	_, err = s.AccessTokenByID(ctx, "at1", base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "rt1", base, 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "rt1b", base, 0)
	wantErr(t, err, store.ErrNotFound)
	// The other grant's tokens are untouched.
	_, err = s.AccessTokenByID(ctx, "at2", base)
	must(t, err)
	_, err = s.RefreshTokenByToken(ctx, "rt2", base, 0)
	must(t, err)
	// No token can be minted for a deleted grant.
	if err := s.CreateAccessToken(ctx, accessToken("at3", "g1", later)); err == nil {
		t.Error("created an access token for a deleted grant")
	}
	if err := s.CreateRefreshToken(ctx, refreshToken("rt3", "g1", later)); err == nil {
		t.Error("created a refresh token for a deleted grant")
	}
}

func testAccessTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	must(t, s.CreateAccessToken(ctx, accessToken("at1", "g1", exp)))
	wantErr(t, s.CreateAccessToken(ctx, accessToken("at1", "g1", exp)), store.ErrDuplicate)
	got, err := s.AccessTokenByID(ctx, "at1", base)
	must(t, err)
	want := accessToken("at1", "g1", exp)
	if got.ID != want.ID || got.GrantID != want.GrantID || got.Subject != want.Subject || got.ClientID != want.ClientID {
		t.Errorf("AccessTokenByID = %+v", got)
	}
	sameList(t, "Scopes", got.Scopes, want.Scopes)
	sameTime(t, "CreatedAt", got.CreatedAt, base)
	sameTime(t, "ExpiresAt", got.ExpiresAt, exp)

	_, err = s.AccessTokenByID(ctx, "at1", exp.Add(-time.Nanosecond))
	must(t, err)
	_, err = s.AccessTokenByID(ctx, "at1", exp)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AccessTokenByID(ctx, "nope", base)
	wantErr(t, err, store.ErrNotFound)

	must(t, s.DeleteAccessToken(ctx, "at1"))
	_, err = s.AccessTokenByID(ctx, "at1", base)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteAccessToken(ctx, "at1"), store.ErrNotFound)
}

func testRefreshRotation(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(30 * 24 * time.Hour)
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	wantErr(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)), store.ErrDuplicate)

	got, err := s.RefreshTokenByToken(ctx, "rt1", base, 0)
	must(t, err)
	want := refreshToken("rt1", "g1", exp)
	if got.Token != "" {
		t.Errorf("Token read back as %q; stores keep only a hash", got.Token)
	}
	if got.GrantID != "g1" || got.Subject != want.Subject || got.ClientID != want.ClientID {
		t.Errorf("RefreshTokenByToken = %+v", got)
	}
	sameList(t, "Scopes", got.Scopes, want.Scopes)
	sameList(t, "AMR", got.AMR, want.AMR)
	sameTime(t, "AuthTime", got.AuthTime, base)
	sameTime(t, "ExpiresAt", got.ExpiresAt, exp)

	// Rotate with empty grant IDs: they are filled from the old token's grant.
	next := refreshToken("rt2", "", exp)
	next.CreatedAt = base.Add(time.Hour)
	must(t, s.RotateRefreshToken(ctx, "rt1", next, accessToken("at2", "", base.Add(2*time.Hour)), 0))
	at, err := s.AccessTokenByID(ctx, "at2", base.Add(time.Hour))
	must(t, err)
	if at.GrantID != "g1" {
		t.Errorf("rotated access token grant = %q", at.GrantID)
	}
	rt, err := s.RefreshTokenByToken(ctx, "rt2", base.Add(time.Hour), 0)
	must(t, err)
	if rt.GrantID != "g1" {
		t.Errorf("rotated refresh token grant = %q", rt.GrantID)
	}
	wantErr(t, s.RotateRefreshToken(ctx, "unknown", refreshToken("rtx", "g1", exp),
		accessToken("atx", "g1", exp), 0), store.ErrNotFound)

	// A second chain link works too.
	must(t, s.RotateRefreshToken(ctx, "rt2", refreshToken("rt3", "g1", exp), accessToken("at3", "g1", exp), 0))

	// rt1 was rotated long ago: presenting it again kills the whole link.
	err = s.RotateRefreshToken(ctx, "rt1", refreshToken("rt4", "g1", exp), accessToken("at4", "g1", exp), 0)
	wantErr(t, err, store.ErrRefreshReused)
	_, err = s.GrantByID(ctx, "", "g1")
	wantErr(t, err, store.ErrNotFound)
	for _, id := range []string{"at2", "at3", "at4"} {
		_, err = s.AccessTokenByID(ctx, id, base)
		wantErr(t, err, store.ErrNotFound)
	}
	for _, tok := range []string{"rt3", "rt4"} {
		_, err = s.RefreshTokenByToken(ctx, tok, base, 0)
		wantErr(t, err, store.ErrNotFound)
	}
}

func testRefreshReuseByLookup(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	must(t, s.RotateRefreshToken(ctx, "rt1", refreshToken("rt2", "g1", exp), accessToken("at2", "g1", exp), 0))
	_, err := s.RefreshTokenByToken(ctx, "rt1", base, 0)
	wantErr(t, err, store.ErrRefreshReused)
	_, err = s.GrantByID(ctx, "", "g1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "rt2", base, 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AccessTokenByID(ctx, "at2", base)
	wantErr(t, err, store.ErrNotFound)
}

// testRotateAtomic makes a rotation fail half-way (its access token ID is taken) and
// checks nothing of it stuck: old is still live, not marked used, and next is unknown.
func testRotateAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	must(t, s.CreateAccessToken(ctx, accessToken("taken", "g1", exp)))
	err := s.RotateRefreshToken(ctx, "rt1", refreshToken("rt2", "g1", exp), accessToken("taken", "g1", exp), 0)
	if err == nil {
		t.Fatal("rotation with a clashing access token ID succeeded")
	}
	_, err = s.RefreshTokenByToken(ctx, "rt2", base, 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "rt1", base, 0)
	must(t, err) // not ErrRefreshReused: the failed rotation did not mark it used
	must(t, s.RotateRefreshToken(ctx, "rt1", refreshToken("rt2", "g1", exp), accessToken("at2", "g1", exp), 0))
	_, err = s.GrantByID(ctx, "", "g1")
	must(t, err)
}

func testRefreshExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	_, err := s.RefreshTokenByToken(ctx, "rt1", exp, 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "nope", base, 0)
	wantErr(t, err, store.ErrNotFound)
	// Expiry alone does not unlink the device.
	_, err = s.GrantByID(ctx, "", "g1")
	must(t, err)
}

func testRevokeRefreshToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	must(t, s.CreateAccessToken(ctx, accessToken("at1", "g1", exp)))
	must(t, s.RevokeRefreshToken(ctx, "rt1"))
	_, err := s.GrantByID(ctx, "", "g1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AccessTokenByID(ctx, "at1", base)
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.RevokeRefreshToken(ctx, "rt1"), store.ErrNotFound)
}

func testAuthRequests(t *testing.T, s store.Store) {
	ctx := context.Background()
	maxAge := uint(300)
	a := store.AuthRequest{ID: "ar1", ClientID: "linkdesk", RedirectURI: "http://127.0.0.1:53682/callback",
		State: "st", Nonce: "n", Scopes: []string{"openid", "offline_access"}, ResponseType: "code",
		ResponseMode: "query", CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256", Prompt: []string{"login"}, MaxAge: &maxAge, LoginHint: "alice",
		CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute)}
	must(t, s.CreateAuthRequest(ctx, a))
	wantErr(t, s.CreateAuthRequest(ctx, a), store.ErrDuplicate)
	b := a
	b.ID, b.MaxAge, b.Prompt = "ar2", nil, nil
	must(t, s.CreateAuthRequest(ctx, b))

	got, err := s.AuthRequestByID(ctx, "ar1")
	must(t, err)
	if got.ID != a.ID || got.ClientID != a.ClientID || got.RedirectURI != a.RedirectURI || got.State != a.State ||
		got.Nonce != a.Nonce || got.ResponseType != a.ResponseType || got.ResponseMode != a.ResponseMode ||
		got.CodeChallenge != a.CodeChallenge || got.CodeChallengeMethod != a.CodeChallengeMethod ||
		got.LoginHint != a.LoginHint || got.Subject != "" || got.Done || !got.AuthTime.IsZero() {
		t.Errorf("AuthRequestByID = %+v", got)
	}
	if got.MaxAge == nil || *got.MaxAge != 300 {
		t.Errorf("MaxAge = %v", got.MaxAge)
	}
	sameList(t, "Scopes", got.Scopes, a.Scopes)
	sameList(t, "Prompt", got.Prompt, a.Prompt)
	sameTime(t, "ExpiresAt", got.ExpiresAt, a.ExpiresAt)
	got, err = s.AuthRequestByID(ctx, "ar2")
	must(t, err)
	if got.MaxAge != nil {
		t.Errorf("MaxAge = %v, want nil", *got.MaxAge)
	}
	_, err = s.AuthRequestByID(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	_, err = s.AuthRequestByCode(ctx, "code-1")
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CompleteAuthRequest(ctx, "ar1", "sub-1", base.Add(time.Minute), []string{"pwd"}))
	must(t, s.SaveAuthCode(ctx, "ar1", "code-1"))
	got, err = s.AuthRequestByCode(ctx, "code-1")
	must(t, err)
	if got.ID != "ar1" || got.Subject != "sub-1" || !got.Done {
		t.Errorf("AuthRequestByCode = %+v", got)
	}
	sameTime(t, "AuthTime", got.AuthTime, base.Add(time.Minute))
	sameList(t, "AMR", got.AMR, []string{"pwd"})
	wantErr(t, s.SaveAuthCode(ctx, "nope", "code-2"), store.ErrNotFound)
	wantErr(t, s.CompleteAuthRequest(ctx, "nope", "sub-1", base, nil), store.ErrNotFound)

	must(t, s.DeleteAuthRequest(ctx, "ar1"))
	_, err = s.AuthRequestByCode(ctx, "code-1")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AuthRequestByID(ctx, "ar1")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.DeleteAuthRequest(ctx, "ar1"), store.ErrNotFound)
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	keys, err := s.SigningKeys(ctx)
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("fresh store has keys %v", keys)
	}
	for i, id := range []string{"k1", "k2", "k3"} {
		must(t, s.AddSigningKey(ctx, store.SigningKey{ID: id, Algorithm: "RS256",
			PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\n" + id + "\n"), CreatedAt: base.Add(time.Duration(i) * time.Hour)}))
	}
	wantErr(t, s.AddSigningKey(ctx, store.SigningKey{ID: "k1", Algorithm: "RS256", PrivateKeyPEM: []byte("x"),
		CreatedAt: base}), store.ErrDuplicate)
	keys, err = s.SigningKeys(ctx)
	must(t, err)
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if want := []string{"k3", "k2", "k1"}; !slices.Equal(ids, want) {
		t.Fatalf("SigningKeys = %v, want %v", ids, want)
	}
	if keys[0].Algorithm != "RS256" || string(keys[0].PrivateKeyPEM) != "-----BEGIN PRIVATE KEY-----\nk3\n" {
		t.Errorf("key = %+v", keys[0])
	}
	sameTime(t, "CreatedAt", keys[0].CreatedAt, base.Add(2*time.Hour))
}

func testFailures(t *testing.T, s store.Store) {
	ctx := context.Background()
	window := 15 * time.Minute
	add := func(key string, at time.Duration) int {
		t.Helper()
		now := base.Add(at)
		n, err := s.AddFailure(ctx, key, now, now.Add(-window))
		must(t, err)
		return n
	}
	for i, want := range []int{1, 2, 3} {
		if n := add("ip:192.0.2.1", time.Duration(i)*time.Minute); n != want {
			t.Fatalf("failure %d: count %d, want %d", i, n, want)
		}
	}
	if n := add("sub:1", 2*time.Minute); n != 1 {
		t.Errorf("other key count = %d, want 1", n)
	}
	// At +15m30s the failure at +0 has left the window.
	if n := add("ip:192.0.2.1", 15*time.Minute+30*time.Second); n != 3 {
		t.Errorf("sliding window count = %d, want 3", n)
	}
	n, err := s.CountFailures(ctx, "ip:192.0.2.1", base)
	must(t, err)
	if n != 4 {
		t.Errorf("CountFailures since base = %d, want 4", n)
	}
	n, err = s.CountFailures(ctx, "ip:192.0.2.1", base.Add(90*time.Second))
	must(t, err)
	if n != 2 {
		t.Errorf("CountFailures since +90s = %d, want 2", n)
	}
	n, err = s.CountFailures(ctx, "ip:unknown", base)
	must(t, err)
	if n != 0 {
		t.Errorf("CountFailures of unknown key = %d", n)
	}
}

func testPurge(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	old := createDeviceAuth(t, s, 1) // expires base+10m
	fresh := newDeviceAuth(2)
	fresh.ExpiresAt = base.Add(time.Hour)
	must(t, s.CreateDeviceAuth(ctx, fresh))

	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	must(t, s.CreateAccessToken(ctx, accessToken("at-old", "g1", base.Add(5*time.Minute))))
	must(t, s.CreateAccessToken(ctx, accessToken("at-new", "g1", base.Add(time.Hour))))
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt-old", "g1", base.Add(5*time.Minute))))
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt-new", "g1", base.Add(time.Hour))))
	for _, ar := range []store.AuthRequest{
		{ID: "ar-old", ClientID: "linkdesk", CreatedAt: base, ExpiresAt: base.Add(5 * time.Minute)},
		{ID: "ar-new", ClientID: "linkdesk", CreatedAt: base, ExpiresAt: base.Add(time.Hour)},
	} {
		must(t, s.CreateAuthRequest(ctx, ar))
	}
	_, err := s.AddFailure(ctx, "k", base, base)
	must(t, err)
	_, err = s.AddFailure(ctx, "k", base.Add(30*time.Minute), base)
	must(t, err)

	must(t, s.Purge(ctx, base.Add(20*time.Minute)))

	_, err = s.DeviceAuthByUserCode(ctx, old.UserCode)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.DeviceAuthByUserCode(ctx, fresh.UserCode)
	must(t, err)
	_, err = s.AuthRequestByID(ctx, "ar-old")
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AuthRequestByID(ctx, "ar-new")
	must(t, err)
	_, err = s.AccessTokenByID(ctx, "at-new", base)
	must(t, err)
	_, err = s.AccessTokenByID(ctx, "at-old", base) // would be live at base, but is purged
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "rt-old", base, 0)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "rt-new", base, 0)
	must(t, err)
	n, err := s.CountFailures(ctx, "k", base)
	must(t, err)
	if n != 1 {
		t.Errorf("failures after purge = %d, want 1", n)
	}
	// Grants are never purged.
	_, err = s.GrantByID(ctx, "", "g1")
	must(t, err)
}

// collect collects an approved device code's tokens at now (access token "at-"+tag,
// refresh token "rt-"+tag) with a lost-answer window, as the provider does.
func collect(s store.Store, clientID, deviceCode, tag string, now time.Time, window time.Duration) (store.DeviceAuth, error) {
	exp := now.Add(time.Hour)
	tokens := store.DeviceTokens{
		Access: store.AccessToken{ID: "at-" + tag, ClientID: clientID, Scopes: []string{"openid"},
			CreatedAt: now, ExpiresAt: exp},
		Refresh: store.RefreshToken{Token: "rt-" + tag, ClientID: clientID, Scopes: []string{"openid", "offline_access"},
			AMR: []string{"pwd"}, CreatedAt: now, ExpiresAt: exp},
	}
	return s.CollectDeviceTokens(context.Background(), clientID, deviceCode, tokens, "198.51.100.9", now, window)
}

// approved creates the n-th device authorization and approves it for sub-1.
func approved(t *testing.T, s store.Store, n int) (store.DeviceAuth, store.Grant) {
	t.Helper()
	seedClient(t, s)
	d := createDeviceAuth(t, s, n)
	g, err := s.ApproveDeviceAuth(context.Background(), d.UserCode, "sub-1", "", base.Add(time.Minute))
	must(t, err)
	return d, g
}

// live reports whether access token "at-"+tag and refresh token "rt-"+tag work at now.
func live(t *testing.T, s store.Store, tag string, now time.Time) (access, refresh bool) {
	t.Helper()
	ctx := context.Background()
	_, err := s.AccessTokenByID(ctx, "at-"+tag, now)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	access = err == nil
	_, err = s.RefreshTokenByToken(ctx, "rt-"+tag, now, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return access, err == nil
}

// testCollectStoresTokens: collecting consumes the request, stores both tokens on the
// request's grant and marks the grant seen, all at once.
func testCollectStoresTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	d, g := approved(t, s, 1)
	at := base.Add(2 * time.Minute)
	got, err := collect(s, tvClient, d.DeviceCode, "a", at, 0)
	must(t, err)
	if got.State != store.DeviceAuthConsumed || got.GrantID != g.ID || got.Subject != "sub-1" {
		t.Errorf("CollectDeviceTokens = %+v", got)
	}
	sameTime(t, "CollectedAt", got.CollectedAt, at)
	tok, err := s.AccessTokenByID(ctx, "at-a", at)
	must(t, err)
	if tok.GrantID != g.ID || tok.Subject != "sub-1" {
		t.Errorf("access token = %+v", tok)
	}
	rt, err := s.RefreshTokenByToken(ctx, "rt-a", at, 0)
	must(t, err)
	if rt.GrantID != g.ID || rt.Subject != "sub-1" {
		t.Errorf("refresh token = %+v", rt)
	}
	sameTime(t, "refresh AuthTime", rt.AuthTime, base.Add(time.Minute))
	seen, err := s.GrantByID(ctx, "sub-1", g.ID)
	must(t, err)
	sameTime(t, "LastSeenAt", seen.LastSeenAt, at)
	if seen.LastIP != "198.51.100.9" {
		t.Errorf("LastIP = %q", seen.LastIP)
	}
	byUser, err := s.DeviceAuthByUserCode(ctx, d.UserCode)
	must(t, err)
	sameTime(t, "stored CollectedAt", byUser.CollectedAt, at)
	_, err = collect(s, tvClient, d.DeviceCode, "b", at, 0) // no window: single use
	wantErr(t, err, store.ErrAlreadyUsed)
}

// testCollectLostAnswer: within the window a repeat gets new tokens and the earlier
// answer's tokens die; after it, the code is used up and the last answer stays.
func testCollectLostAnswer(t *testing.T, s store.Store) {
	d, _ := approved(t, s, 1)
	t1 := base.Add(2 * time.Minute)
	const window = time.Minute
	_, err := collect(s, tvClient, d.DeviceCode, "a", t1, window)
	must(t, err)
	got, err := collect(s, tvClient, d.DeviceCode, "b", t1.Add(30*time.Second), window)
	must(t, err)
	sameTime(t, "CollectedAt after a repeat", got.CollectedAt, t1) // the window does not slide
	now := t1.Add(31 * time.Second)
	if a, r := live(t, s, "a", now); a || r {
		t.Errorf("earlier answer still live after a repeat: access %v, refresh %v", a, r)
	}
	if a, r := live(t, s, "b", now); !a || !r {
		t.Errorf("repeat's answer not live: access %v, refresh %v", a, r)
	}
	_, err = collect(s, tvClient, d.DeviceCode, "c", t1.Add(window), window)
	wantErr(t, err, store.ErrAlreadyUsed)
	if a, r := live(t, s, "b", now); !a || !r {
		t.Errorf("a refused repeat revoked the answer: access %v, refresh %v", a, r)
	}
}

// testCollectAfterAnswerUsed: once the device used the refresh token of its answer, it
// evidently got that answer, so a repeat is refused and the answer stays.
func testCollectAfterAnswerUsed(t *testing.T, s store.Store) {
	ctx := context.Background()
	d, _ := approved(t, s, 1)
	t1 := base.Add(2 * time.Minute)
	_, err := collect(s, tvClient, d.DeviceCode, "a", t1, time.Hour)
	must(t, err)
	next := refreshToken("rt-next", "", t1.Add(time.Hour))
	next.CreatedAt = t1.Add(time.Second)
	must(t, s.RotateRefreshToken(ctx, "rt-a", next, accessToken("at-next", "", t1.Add(time.Hour)), 0))
	_, err = collect(s, tvClient, d.DeviceCode, "b", t1.Add(2*time.Second), time.Hour)
	wantErr(t, err, store.ErrAlreadyUsed)
	_, err = s.RefreshTokenByToken(ctx, "rt-next", t1.Add(3*time.Second), 0)
	must(t, err)
}

// testConcurrentCollectRepeats races repeats of one device code within the window:
// each may succeed, but exactly one answer's tokens live afterwards.
func testConcurrentCollectRepeats(t *testing.T, s store.Store) {
	d, g := approved(t, s, 1)
	const n = 12
	now := base.Add(2 * time.Minute)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = collect(s, tvClient, d.DeviceCode, fmt.Sprint(i), now, time.Hour) })
	}
	wg.Wait()
	liveAccess, liveRefresh := 0, 0
	for i, err := range errs {
		must(t, err)
		a, r := live(t, s, fmt.Sprint(i), now)
		if a {
			liveAccess++
		}
		if r {
			liveRefresh++
		}
	}
	if liveAccess != 1 || liveRefresh != 1 {
		t.Errorf("after %d repeats: %d access and %d refresh tokens live, want 1 and 1", n, liveAccess, liveRefresh)
	}
	list, err := s.ListGrants(context.Background(), "sub-1", store.FlowDevice)
	must(t, err)
	if len(list) != 1 || list[0].ID != g.ID {
		t.Errorf("grants after repeats = %+v, want just %s", list, g.ID)
	}
}

// testRefreshLostAnswer: a rotated refresh token works again within the grace period
// while its successor is unused; the lost successor and its access token die.
func testRefreshLostAnswer(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	const grace = time.Minute
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	rotate := func(old, next string, at time.Time) error {
		rt := refreshToken(next, "", exp)
		rt.CreatedAt = at
		return s.RotateRefreshToken(ctx, old, rt, accessToken("at-"+next, "", exp), grace)
	}
	t1 := base.Add(time.Minute)
	must(t, rotate("rt1", "rt2", t1)) // the answer carrying rt2 is lost
	got, err := s.RefreshTokenByToken(ctx, "rt1", t1.Add(10*time.Second), grace)
	must(t, err)
	if got.GrantID != "g1" {
		t.Errorf("rt1 in grace = %+v", got)
	}
	must(t, rotate("rt1", "rt3", t1.Add(10*time.Second)))
	_, err = s.RefreshTokenByToken(ctx, "rt2", t1.Add(11*time.Second), grace)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AccessTokenByID(ctx, "at-rt2", t1.Add(11*time.Second))
	wantErr(t, err, store.ErrNotFound)
	_, err = s.AccessTokenByID(ctx, "at-rt3", t1.Add(11*time.Second))
	must(t, err)

	// The device uses rt3: it got that answer, so rt1 is now plain reuse.
	must(t, rotate("rt3", "rt4", t1.Add(20*time.Second)))
	got, err = s.RefreshTokenByToken(ctx, "rt1", t1.Add(30*time.Second), grace)
	wantErr(t, err, store.ErrRefreshReused)
	if got.GrantID != "g1" || got.ClientID != tvClient {
		t.Errorf("reuse did not return the token's record for the log: %+v", got)
	}
	_, err = s.GrantByID(ctx, "", "g1")
	wantErr(t, err, store.ErrNotFound)
}

// testRefreshGraceEnds: after the grace period a rotated token is reuse, even when its
// successor was never used, and the link is revoked.
func testRefreshGraceEnds(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, s.CreateGrant(ctx, newGrant("g1", "sub-1", store.FlowDevice, base)))
	exp := base.Add(time.Hour)
	const grace = time.Minute
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt1", "g1", exp)))
	next := refreshToken("rt2", "", exp)
	next.CreatedAt = base
	must(t, s.RotateRefreshToken(ctx, "rt1", next, accessToken("at2", "", exp), grace))
	late := refreshToken("rt3", "", exp)
	late.CreatedAt = base.Add(grace)
	err := s.RotateRefreshToken(ctx, "rt1", late, accessToken("at3", "", exp), grace)
	wantErr(t, err, store.ErrRefreshReused)
	_, err = s.GrantByID(ctx, "", "g1")
	wantErr(t, err, store.ErrNotFound)
}
