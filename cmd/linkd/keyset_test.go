package main

// Replica tests (issue 14, "one key set for all replicas"): three real linkd processes
// on one shared database must serve one key set, and a rotation made through the
// database must reach all of them before any signs with the new key.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/provider"
	"github.com/linkdesk/linkdesk/server/sealing"
	"github.com/linkdesk/linkdesk/server/store/sqlite"
	"github.com/linkdesk/linkdesk/server/tlsca"
)

// publishedKeyIDs is the kids of the JWKS p serves, in its order.
func publishedKeyIDs(ctx context.Context, p *linkdProcess) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/keys", nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /keys: %s", resp.Status)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.Kid)
	}
	return ids, nil
}

// idTokenOf returns tok's ID token with the kid of its header and its issue time.
func idTokenOf(t *testing.T, tok *oauth2.Token) (raw, kid string, iat time.Time) {
	t.Helper()
	raw, _ = tok.Extra("id_token").(string)
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("no ID token in the token response: %q", raw)
	}
	var header struct {
		Kid string `json:"kid"`
	}
	var claims struct {
		IAT int64 `json:"iat"`
	}
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return raw, header.Kid, time.Unix(claims.IAT, 0)
}

// verifyAt verifies an ID token that signer issued against the JWKS of against, with
// zitadel's relying-party verifier (issuer, audience, expiry and signature).
func verifyAt(ctx context.Context, idToken string, signer, against *linkdProcess) error {
	keys := rp.NewRemoteKeySet(against.Client, against.URL+"/keys")
	_, err := rp.VerifyIDToken[*oidc.IDTokenClaims](ctx, idToken, rp.NewIDTokenVerifier(signer.URL, devices.AppClientID, keys))
	return err
}

// Three linkd processes started at the same moment on one SQLite file without signing
// keys serve one key set; a key rotated with `linkd keys rotate` is published by every one of them
// before its NotBefore, signs from then on at each of them, and the ID tokens it signs
// at one verify against the others' key sets.
func TestReplicasShareOneKeySet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const password = "correct horse battery staple"

	// Each replica has a data directory of its own (certificate, session key) holding
	// the same secrets.key, as the docs ask, and all use one database file.
	shared := t.TempDir()
	secrets, err := sealing.LoadOrCreateKey(filepath.Join(shared, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}
	dbFlag := "sqlite:" + filepath.Join(shared, "linkd.db")
	dirs := make([]string, 3)
	for i := range dirs {
		dirs[i] = t.TempDir()
		if err := os.WriteFile(filepath.Join(dirs[i], "secrets.key"), secrets, 0o600); err != nil {
			t.Fatal(err)
		}
		// Certificates made beforehand, so nothing but the store sets the replicas apart
		// when they start.
		if _, _, err := tlsca.Ensure(dirs[i], "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	// The operator adds the account before the replicas start, so they meet a migrated
	// database without signing keys and race straight for the first key.
	if code, out, errOut := runCmd(t, password+"\n", "users", "add", "--data", dirs[0], "--db", dbFlag,
		"--username", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("users add: %d %q %q", code, out, errOut)
	}
	replicas := make([]*linkdProcess, len(dirs))
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replicas[i] = startLinkd(t, dirs[i], "--db", dbFlag)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	first, err := publishedKeyIDs(ctx, replicas[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 {
		t.Fatalf("replica 0 publishes %v, want one key", first)
	}
	for i, p := range replicas[1:] {
		if got, err := publishedKeyIDs(ctx, p); err != nil || !slices.Equal(got, first) {
			t.Fatalf("replica %d publishes %v (%v), replica 0 %v: want one key set", i+1, got, err, first)
		}
	}

	before, err := linkdtest.SignInAt(ctx, replicas[0].URL, replicas[0].Client, nil, "alice", password, "")
	if err != nil {
		t.Fatalf("sign in at replica 0: %v", err)
	}
	oldToken, kid, _ := idTokenOf(t, before)
	if kid != first[0] {
		t.Fatalf("ID token signed with %s, want the published key %s", kid, first[0])
	}
	for i, p := range replicas {
		if err := verifyAt(ctx, oldToken, replicas[0], p); err != nil {
			t.Errorf("replica 0's ID token does not verify against replica %d's key set: %v", i, err)
		}
	}

	// Rotate through the database, as an operator does next to running replicas.
	code, out, errOut := runCmd(t, "", "keys", "rotate", "--data", dirs[1], "--db", dbFlag)
	if code != 0 {
		t.Fatalf("keys rotate: %d %q %q", code, out, errOut)
	}
	rotatedAt := time.Now()
	db, err := sqlite.Open(ctx, strings.TrimPrefix(dbFlag, "sqlite:"), sqlite.WithSecretsKey(sealing.Derive(secrets, sealing.LabelStore)))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := db.SigningKeys(ctx)
	db.Close()
	if err != nil || len(keys) != 2 || keys[1].ID != first[0] || !strings.Contains(out, keys[0].ID) {
		t.Fatalf("keys after rotation: %v (%v), printed %q", keys, err, out)
	}
	rotated := keys[0]
	if rotated.NotBefore.Sub(rotated.CreatedAt) < provider.MinSignAfter {
		t.Fatalf("rotated key signs from %v, only %v after it was stored", rotated.NotBefore, rotated.NotBefore.Sub(rotated.CreatedAt))
	}

	// Every replica publishes the new key before it may sign: waited for on the JWKS
	// answers, with the key's NotBefore as the deadline.
	want := []string{rotated.ID, first[0]}
	for i, p := range replicas {
		for {
			got, err := publishedKeyIDs(ctx, p)
			if err == nil && slices.Equal(got, want) {
				break
			}
			if time.Now().After(rotated.NotBefore) {
				t.Fatalf("replica %d publishes %v (%v) at the new key's NotBefore, want %v", i, got, err, want)
			}
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	t.Logf("all replicas published the new key %v after the rotation (refresh bound %v, signs after %v)",
		time.Since(rotatedAt).Round(time.Millisecond), provider.KeyRefresh, rotated.NotBefore.Sub(rotated.CreatedAt))

	// Refresh the app's tokens at each replica in turn until each has signed an ID token
	// with the new key. None may do so before the key's NotBefore; each such token
	// verifies against the other replicas' key sets.
	refresh := before.RefreshToken
	signedNew := make([]string, len(replicas))
	deadline := rotated.NotBefore.Add(provider.KeyRefresh + time.Minute)
	for n := 0; slices.Contains(signedNew, ""); n++ {
		i := n % len(replicas)
		p := replicas[i]
		conf := &oauth2.Config{ClientID: devices.AppClientID, Endpoint: oauth2.Endpoint{
			TokenURL: p.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
		tok, err := conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, p.Client), &oauth2.Token{RefreshToken: refresh}).Token()
		if err != nil {
			t.Fatalf("refresh at replica %d: %v", i, err)
		}
		refresh = tok.RefreshToken
		raw, kid, iat := idTokenOf(t, tok)
		switch {
		case kid == rotated.ID && iat.Before(rotated.NotBefore.Truncate(time.Second)):
			t.Fatalf("replica %d signed with the new key at %v, before its NotBefore %v", i, iat, rotated.NotBefore)
		case kid == rotated.ID:
			signedNew[i] = raw
		case kid != first[0]:
			t.Fatalf("replica %d signed with %s, a key it never published", i, kid)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the new key's NotBefore, replicas signed with it: %v", time.Since(rotated.NotBefore), signedNew)
		}
		if signedNew[i] == "" {
			select {
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	for i, raw := range signedNew {
		for j, p := range replicas {
			if err := verifyAt(ctx, raw, replicas[i], p); err != nil {
				t.Errorf("replica %d's ID token signed with the new key does not verify against replica %d's key set: %v", i, j, err)
			}
		}
	}
	// Tokens the old key signed still verify everywhere.
	for i, p := range replicas {
		if err := verifyAt(ctx, oldToken, replicas[0], p); err != nil {
			t.Errorf("after the rotation, the old key's ID token does not verify against replica %d: %v", i, err)
		}
	}
}

// keys rotate refuses a --sign-after shorter than every replica needs to publish the
// key, and stores the NotBefore it was given.
func TestKeysRotateSignAfter(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runCmd(t, "", "keys", "rotate", "--data", dir, "--sign-after", "5s"); code != exitUsage ||
		!strings.Contains(errOut, "--sign-after must be at least "+provider.MinSignAfter.String()) {
		t.Fatalf("--sign-after 5s: exit %d, %q; want a usage error", code, errOut)
	}
	start := time.Now()
	if code, out, errOut := runCmd(t, "", "keys", "rotate", "--data", dir, "--sign-after", "2h"); code != 0 || !strings.Contains(out, "in 2h0m0s") {
		t.Fatalf("keys rotate --sign-after 2h: %d %q %q", code, out, errOut)
	}
	db := openData(t, dir)
	defer db.Close()
	keys, err := db.SigningKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	if nb := keys[0].NotBefore; nb.Before(start.Add(2*time.Hour)) || nb.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("NotBefore %v, want 2h after the command ran (%v)", nb, start)
	}
}
