package provider_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/linkdesk/linkdesk/server/provider"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
)

func TestDescribe(t *testing.T) {
	if got := provider.Describe("offline_access"); got != "Stay signed in" {
		t.Fatalf("offline_access: %q", got)
	}
	if got := provider.Describe("tv.watch"); got == "" || got == "tv.watch" {
		t.Fatalf("unknown scope: %q", got)
	}
}

func TestVerifyAccessTokenRejectsGarbageAndKeepsKey(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := provider.New(ctx, provider.Config{Issuer: "https://127.0.0.1:8443", Store: db})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "x", "eyJhbGciOiJSUzI1NiJ9.e30.sig", string(make([]byte, 5000))} {
		if _, err := p.VerifyAccessToken(ctx, tok); err == nil {
			t.Errorf("token %q accepted", tok)
		}
	}
	keys, err := db.SigningKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].Algorithm != "RS256" {
		t.Fatalf("signing keys %v %v", len(keys), err)
	}
	// A second provider on the same store reuses the key instead of adding one.
	if _, err := provider.New(ctx, provider.Config{Issuer: "https://127.0.0.1:8443", Store: db}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.SigningKeys(ctx); len(keys) != 1 {
		t.Fatalf("%d signing keys after restart", len(keys))
	}
}
