package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/linkdesk/linkdesk/server/store"
)

// testAuthCodeClaimedOnce checks that a code is issued once per request and claimed
// once, even by concurrent redemptions.
func testAuthCodeClaimedOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.AuthRequest{ID: "ar1", ClientID: "linkdesk", RedirectURI: "http://127.0.0.1:53682/callback",
		ResponseType: "code", CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute)}
	must(t, s.CreateAuthRequest(ctx, a))
	must(t, s.CompleteAuthRequest(ctx, "ar1", "sub-1", base, []string{"pwd"}))
	must(t, s.SaveAuthCode(ctx, "ar1", "code-1"))
	// A re-opened callback gets no second code, and the first one still works.
	wantErr(t, s.SaveAuthCode(ctx, "ar1", "code-2"), store.ErrAlreadyUsed)
	_, err := s.AuthRequestByCode(ctx, "code-2")
	wantErr(t, err, store.ErrNotFound)

	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = s.AuthRequestByCode(ctx, "code-1") })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrNotFound):
			t.Errorf("claim %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d claims of one code won, want exactly 1", wins, n)
	}
	// Still no second code after the claim; the request itself stays until deleted.
	wantErr(t, s.SaveAuthCode(ctx, "ar1", "code-3"), store.ErrAlreadyUsed)
	got, err := s.AuthRequestByID(ctx, "ar1")
	must(t, err)
	if got.Subject != "sub-1" {
		t.Errorf("request after claim = %+v", got)
	}
}
