package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// testClientPolicy: a client's policy round-trips through UpsertClient, ClientByID and
// ListClients, an update replaces it, and a client stored without one has none.
func testClientPolicy(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	pol := store.ClientPolicy{DeviceFlowOff: true, AllowedNetworks: []string{"192.0.2.0/24", "2001:db8::/32"},
		ApproveSameNetwork: true, MaxDevices: 3, UnlinkAfter: 720 * time.Hour}
	c := store.Client{ID: "kiosk-b", Name: "Kiosk B", GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code"},
		CreatedAt: base, Policy: pol}
	must(t, s.UpsertClient(ctx, c))
	got, err := s.ClientByID(ctx, "kiosk-b")
	must(t, err)
	samePolicy(t, "ClientByID", got.Policy, pol)

	list, err := s.ListClients(ctx)
	must(t, err)
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if want := []string{"kiosk-b", tvClient}; !slices.Equal(ids, want) {
		t.Fatalf("ListClients ids = %q, want %q", ids, want)
	}
	samePolicy(t, "ListClients kiosk-b", list[0].Policy, pol)
	samePolicy(t, "ListClients "+tvClient, list[1].Policy, store.ClientPolicy{})
	if list[1].Name != "Living Room TV App" || !list[1].CreatedAt.Equal(base) {
		t.Errorf("ListClients %s = %+v", tvClient, list[1])
	}

	c.Policy = store.ClientPolicy{MaxDevices: 1}
	must(t, s.UpsertClient(ctx, c))
	got, err = s.ClientByID(ctx, "kiosk-b")
	must(t, err)
	samePolicy(t, "after update", got.Policy, c.Policy)
}

func samePolicy(t *testing.T, what string, got, want store.ClientPolicy) {
	t.Helper()
	if got.DeviceFlowOff != want.DeviceFlowOff || got.ApproveSameNetwork != want.ApproveSameNetwork ||
		got.MaxDevices != want.MaxDevices || got.UnlinkAfter != want.UnlinkAfter {
		t.Errorf("%s: policy = %+v, want %+v", what, got, want)
	}
	sameList(t, what+": AllowedNetworks", got.AllowedNetworks, want.AllowedNetworks)
}

// testDeleteIdleGrants: only device grants of the named client whose last use (last
// seen, else created) is before the cutoff go, oldest first, at most limit per call,
// with their tokens; the rest stay.
func testDeleteIdleGrants(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	cutoff := base.Add(10 * time.Hour)
	// old1: created long ago, never seen. old2: created earlier, seen after old1 was
	// made but still before the cutoff. fresh: old but seen after the cutoff.
	must(t, s.CreateGrant(ctx, newGrant("old1", "sub-1", store.FlowDevice, base.Add(2*time.Hour))))
	must(t, s.CreateGrant(ctx, newGrant("old2", "sub-2", store.FlowDevice, base)))
	must(t, s.TouchGrant(ctx, "old2", "192.0.2.1", base.Add(3*time.Hour)))
	must(t, s.CreateGrant(ctx, newGrant("old3", "sub-1", store.FlowDevice, base.Add(4*time.Hour))))
	must(t, s.CreateGrant(ctx, newGrant("fresh", "sub-1", store.FlowDevice, base)))
	must(t, s.TouchGrant(ctx, "fresh", "", cutoff.Add(time.Minute)))
	must(t, s.CreateGrant(ctx, newGrant("new", "sub-1", store.FlowDevice, cutoff)))
	must(t, s.CreateGrant(ctx, newGrant("signin", "sub-1", store.FlowSignIn, base)))
	other := newGrant("other-client", "sub-1", store.FlowDevice, base)
	other.ClientID = "someone-else"
	must(t, s.CreateGrant(ctx, other))
	later := cutoff.Add(time.Hour)
	must(t, s.CreateAccessToken(ctx, accessToken("at-old1", "old1", later)))
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt-old1", "old1", later)))
	must(t, s.CreateRefreshToken(ctx, refreshToken("rt-fresh", "fresh", later)))

	ids := func(gs []store.Grant) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	got, err := s.DeleteIdleGrants(ctx, tvClient, cutoff, 2)
	must(t, err)
	if want := []string{"old1", "old2"}; !slices.Equal(ids(got), want) {
		t.Fatalf("first batch = %q, want %q (oldest last use first)", ids(got), want)
	}
	if got[1].Subject != "sub-2" || got[1].LastIP != "192.0.2.1" {
		t.Errorf("deleted grant returned as %+v", got[1])
	}
	_, err = s.AccessTokenByID(ctx, "at-old1", base)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.RefreshTokenByToken(ctx, "rt-old1", base, 0)
	wantErr(t, err, store.ErrNotFound)

	got, err = s.DeleteIdleGrants(ctx, tvClient, cutoff, 2)
	must(t, err)
	if want := []string{"old3"}; !slices.Equal(ids(got), want) {
		t.Fatalf("second batch = %q, want %q", ids(got), want)
	}
	got, err = s.DeleteIdleGrants(ctx, tvClient, cutoff, 2)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("third batch = %q, want none", ids(got))
	}
	for _, id := range []string{"fresh", "new", "signin", "other-client"} {
		if _, err := s.GrantByID(ctx, "", id); err != nil {
			t.Errorf("grant %s: %v; it is not idle (or not this client's device link) and must stay", id, err)
		}
	}
	_, err = s.RefreshTokenByToken(ctx, "rt-fresh", base, 0)
	must(t, err)
}
