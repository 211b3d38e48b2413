package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// tokenServer is a provider whose token endpoint gives the answer in *status and *body and
// records the last request's form and Basic credentials.
func tokenServer(t *testing.T, status *int, body *string) (*Provider, *url.Values, *string) {
	t.Helper()
	var form url.Values
	var basic string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		if u, _, ok := r.BasicAuth(); ok {
			basic = u
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(*status)
		_, _ = w.Write([]byte(*body))
	}))
	t.Cleanup(srv.Close)
	return &Provider{Issuer: srv.URL, TokenEndpoint: srv.URL + "/token"}, &form, &basic
}

// TestRefreshRefusalEndsSession: the app's sessions and the device flow share one
// classification of a refused refresh. Any definite refusal of the token endpoint ends
// the session (the device's rule; the app's old list missed invalid_client and
// invalid_request and showed "Something went wrong" forever); outages do not.
func TestRefreshRefusalEndsSession(t *testing.T) {
	status, body := 0, ""
	p, _, _ := tokenServer(t, &status, &body)
	for _, c := range []struct {
		status int
		body   string
		ended  bool
	}{
		{400, `{"error":"invalid_grant"}`, true},
		{401, `{"error":"invalid_client"}`, true},
		{400, `{"error":"invalid_request"}`, true},
		{503, `oops`, false},
		{429, `{"error":"temporarily_unavailable"}`, false},
	} {
		status, body = c.status, c.body
		s := newSession(p, nil, Account{Issuer: p.Issuer, Subject: "1"},
			&oauth2.Token{AccessToken: "old", RefreshToken: "r", Expiry: time.Now().Add(-time.Hour)}, nil)
		_, err := s.Token()
		if err == nil || errors.Is(err, ErrSessionEnded) != c.ended {
			t.Errorf("%d %s: err %v, want ended=%v", c.status, c.body, err, c.ended)
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != c.status {
			t.Errorf("%d %s: no *HTTPError with the status in %v", c.status, c.body, err)
		}
	}
}

// TestClientTokenOnItsClock: one token request is parsed once, keeps the extra fields,
// stamps the expiry on the client's clock and authenticates as the client is registered.
func TestClientTokenOnItsClock(t *testing.T) {
	status, body := 200, `{"access_token":"a","token_type":"Bearer","refresh_token":"r","expires_in":3600,"id_token":"x"}`
	p, form, basic := tokenServer(t, &status, &body)
	then := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	pub := &Client{Provider: p, ID: "kiosk", Now: func() time.Time { return then }}
	tok, err := pub.Token(context.Background(), url.Values{"grant_type": {"g"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "a" || tok.RefreshToken != "r" || !tok.Expiry.Equal(then.Add(time.Hour)) || tok.Extra("id_token") != "x" {
		t.Fatalf("token %+v", tok)
	}
	if form.Get("client_id") != "kiosk" || *basic != "" {
		t.Errorf("public client: form %v, basic %q", *form, *basic)
	}
	conf := &Client{Provider: p, ID: "tv", Secret: "s"}
	if _, err := conf.Token(context.Background(), url.Values{"grant_type": {"g"}}); err != nil {
		t.Fatal(err)
	}
	if form.Get("client_id") != "" || *basic != "tv" {
		t.Errorf("confidential client: form %v, basic %q", *form, *basic)
	}
	status, body = 400, `{"error":"authorization_pending"}`
	var he *HTTPError
	if _, err := pub.Token(context.Background(), url.Values{}); !errors.As(err, &he) || he.Code != "authorization_pending" || he.Temporary() {
		t.Errorf("pending: %v", err)
	}
}
