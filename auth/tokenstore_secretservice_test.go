//go:build secretservice

package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestSecretServiceRoundTrip runs the token store against a real Secret Service
// (scripts/secret-service-test.sh starts gnome-keyring in a private D-Bus session):
// a token longer than one keyring item is split, read back whole, survives a new
// store instance, and is gone after the account is removed.
func TestSecretServiceRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	acct := Account{Issuer: "https://link.example.test", Subject: "sub-secret-service", Username: "demo"}
	tok := &oauth2.Token{
		AccessToken:  strings.Repeat("a", 3*ChunkSize+17), // forces several chunks
		RefreshToken: "refresh-" + strings.Repeat("r", 100),
		TokenType:    "Bearer",
		Expiry:       time.Now().Add(time.Hour).Round(time.Second),
	}

	store := NewTokenStore(OSKeyring(), 10*time.Second)
	if err := store.SaveAccount(ctx, acct, tok); err != nil {
		t.Fatalf("SaveAccount on the real Secret Service: %v", err)
	}
	t.Cleanup(func() { _ = NewTokenStore(OSKeyring(), 10*time.Second).RemoveAccount(context.Background(), acct.Key()) })

	fresh := NewTokenStore(OSKeyring(), 10*time.Second)
	gotAcct, got, err := fresh.LoadAccount(ctx, acct.Key())
	if err != nil {
		t.Fatalf("LoadAccount: %v", err)
	}
	if gotAcct.Username != "demo" || got.AccessToken != tok.AccessToken || got.RefreshToken != tok.RefreshToken || !got.Expiry.Equal(tok.Expiry) {
		t.Fatalf("read back %+v / access %d bytes, want the saved token (%d bytes)", gotAcct, len(got.AccessToken), len(tok.AccessToken))
	}

	if err := fresh.RemoveAccount(ctx, acct.Key()); err != nil {
		t.Fatalf("RemoveAccount: %v", err)
	}
	if _, _, err := fresh.LoadAccount(ctx, acct.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("after RemoveAccount, LoadAccount error = %v, want ErrNoToken", err)
	}
}
