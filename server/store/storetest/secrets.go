package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// testRetireSigningKeys: a key goes once a newer key signing before the cutoff has
// replaced it; the newest key always stays.
func testRetireSigningKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, id := range []string{"k1", "k2", "k3"} {
		must(t, s.AddSigningKey(ctx, store.SigningKey{ID: id, Algorithm: "RS256",
			PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\n" + id + "\n"), CreatedAt: base.Add(time.Duration(i) * time.Hour)}))
	}
	ids := func() []string {
		keys, err := s.SigningKeys(ctx)
		must(t, err)
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	for _, step := range []struct {
		before time.Time
		n      int
		left   []string
	}{
		{base.Add(30 * time.Minute), 0, []string{"k3", "k2", "k1"}}, // nothing replaced k1 yet
		{base.Add(90 * time.Minute), 1, []string{"k3", "k2"}},
		{base.Add(90 * time.Minute), 0, []string{"k3", "k2"}},
		{base.Add(3 * time.Hour), 1, []string{"k3"}},
		{base.Add(1000 * time.Hour), 0, []string{"k3"}},
	} {
		n, err := s.RetireSigningKeys(ctx, step.before)
		must(t, err)
		if got := ids(); n != step.n || !slices.Equal(got, step.left) {
			t.Fatalf("RetireSigningKeys(%v) = %d, keys %v; want %d, %v", step.before.Sub(base), n, got, step.n, step.left)
		}
	}
	// A key added with the same creation time is still the newer one, as SigningKeys
	// orders them.
	must(t, s.AddSigningKey(ctx, store.SigningKey{ID: "k4", Algorithm: "RS256",
		PrivateKeyPEM: []byte("-----BEGIN PRIVATE KEY-----\nk4\n"), CreatedAt: base.Add(2 * time.Hour)}))
	if got := ids(); !slices.Equal(got, []string{"k4", "k3"}) {
		t.Fatalf("keys %v, want k4 before k3", got)
	}
	n, err := s.RetireSigningKeys(ctx, base.Add(1000*time.Hour))
	must(t, err)
	if got := ids(); n != 1 || !slices.Equal(got, []string{"k4"}) {
		t.Fatalf("RetireSigningKeys with a tie = %d, keys %v; want 1, [k4]", n, got)
	}
}

// testSignOuts: a signed-out session is reported until its expiry, and only it.
func testSignOuts(t *testing.T, s store.Store) {
	ctx := context.Background()
	signedOut := func(id string, now time.Time) bool {
		t.Helper()
		ok, err := s.SignedOut(ctx, id, now)
		must(t, err)
		return ok
	}
	if signedOut("s1", base) {
		t.Fatal("fresh store reports a sign-out")
	}
	must(t, s.AddSignOut(ctx, "s1", base.Add(time.Hour), base))
	must(t, s.AddSignOut(ctx, "s1", base.Add(time.Hour), base)) // twice is fine
	if !signedOut("s1", base) || !signedOut("s1", base.Add(59*time.Minute)) {
		t.Error("sign-out not reported before the session's expiry")
	}
	if signedOut("s2", base) {
		t.Error("another session reported signed out")
	}
	if signedOut("s1", base.Add(time.Hour)) {
		t.Error("sign-out still reported at the session's expiry")
	}
	must(t, s.AddSignOut(ctx, "s3", base, base)) // already expired: nothing to keep
	if signedOut("s3", base.Add(-time.Minute)) {
		t.Error("an expired session's sign-out was kept")
	}
	// A later sign-out drops records that have expired, and keeps the live ones.
	must(t, s.AddSignOut(ctx, "s4", base.Add(3*time.Hour), base.Add(2*time.Hour)))
	if signedOut("s1", base.Add(-time.Minute)) {
		t.Error("an expired record survived a later sign-out")
	}
	if !signedOut("s4", base.Add(2*time.Hour)) {
		t.Error("live sign-out lost")
	}
	if err := s.AddSignOut(ctx, "", base.Add(time.Hour), base); err == nil {
		t.Error("empty session id accepted")
	}
}
