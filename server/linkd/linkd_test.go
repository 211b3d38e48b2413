package linkd_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
)

func TestSignInWithPKCEAndUserinfo(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	u := in.CreateUser(t, "alice", "s3cret pass")
	tok := in.AppToken(t, "alice", "s3cret pass")
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token response lacks a token: %+v", tok)
	}
	at, err := in.Server.Provider().VerifyAccessToken(context.Background(), tok.AccessToken)
	if err != nil || at.Subject != u.Subject || at.ClientID != devices.AppClientID {
		t.Fatalf("VerifyAccessToken = %+v, %v", at, err)
	}
	req, _ := http.NewRequest("GET", in.URL+"/userinfo", nil)
	tok.SetAuthHeader(req)
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ui map[string]any
	json.NewDecoder(resp.Body).Decode(&ui)
	if ui["sub"] != u.Subject || ui["name"] != "Alice" || ui["preferred_username"] != "alice" || ui["email"] != "alice@example.com" {
		t.Fatalf("userinfo = %v", ui)
	}
	// The API accepts the token.
	req, _ = http.NewRequest("GET", in.URL+"/api/v1/me", nil)
	tok.SetAuthHeader(req)
	resp2, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 200 {
		t.Fatalf("/api/v1/me = %d", resp2.StatusCode)
	}
	_ = oauth2.Token{}
}
