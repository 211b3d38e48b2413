package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// testNearbyDeviceAuths: the nearby list holds only pending, unexpired requests from
// one network (an IPv4 address, an IPv6 /64), newest first, at most limit.
func testNearbyDeviceAuths(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedClient(t, s)
	mk := func(n int, ip string, created time.Time) store.DeviceAuth {
		d := newDeviceAuth(n)
		d.RequestIP, d.CreatedAt, d.ExpiresAt = ip, created, created.Add(10*time.Minute)
		must(t, s.CreateDeviceAuth(ctx, d))
		return d
	}
	a := mk(1, "192.0.2.10", base)
	b := mk(2, "2001:db8:1:2::5", base.Add(time.Second))
	c := mk(3, "2001:db8:1:2:aaaa::9", base.Add(2*time.Second))
	mk(4, "192.0.2.11", base.Add(3*time.Second))      // another IPv4 address
	mk(5, "2001:db8:1:3::5", base.Add(4*time.Second)) // another /64
	d := mk(6, "192.0.2.10", base.Add(5*time.Second))
	old := mk(7, "192.0.2.10", base.Add(-9*time.Minute)) // expires at base+1m
	denied := mk(8, "192.0.2.10", base.Add(6*time.Second))
	must(t, s.DenyDeviceAuth(ctx, denied.UserCode, "sub-1", base.Add(7*time.Second)))

	codes := func(ds []store.DeviceAuth) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.UserCode)
		}
		return out
	}
	now := base.Add(30 * time.Second)
	got, err := s.NearbyDeviceAuths(ctx, store.NetworkKey("192.0.2.10"), now, 20)
	must(t, err)
	sameList(t, "IPv4 nearby", codes(got), []string{d.UserCode, a.UserCode, old.UserCode})
	if len(got) > 0 && (got[0].Device.Name != "Bedroom TV" || got[0].ClientID != tvClient || got[0].RequestIP != "192.0.2.10") {
		t.Errorf("nearby request = %+v", got[0])
	}
	got, err = s.NearbyDeviceAuths(ctx, store.NetworkKey("192.0.2.10"), base.Add(2*time.Minute), 20)
	must(t, err)
	sameList(t, "IPv4 nearby after expiry", codes(got), []string{d.UserCode, a.UserCode})
	got, err = s.NearbyDeviceAuths(ctx, store.NetworkKey("192.0.2.10"), now, 1)
	must(t, err)
	sameList(t, "IPv4 nearby, limit 1", codes(got), []string{d.UserCode})
	got, err = s.NearbyDeviceAuths(ctx, store.NetworkKey("[2001:db8:1:2::77]:443"), now, 20)
	must(t, err)
	sameList(t, "IPv6 /64 nearby", codes(got), []string{c.UserCode, b.UserCode})
	got, err = s.NearbyDeviceAuths(ctx, store.NetworkKey("198.51.100.1"), now, 20)
	must(t, err)
	if got == nil || len(got) != 0 {
		t.Errorf("nearby of a quiet network = %v, want empty non-nil", got)
	}
}
