package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/auth"
	"github.com/linkdesk/linkdesk/server/linkd/linkdtest/browsertest"
)

// memTokenStore is an in-memory TokenStore for tests.
type memTokenStore struct {
	mu   sync.Mutex
	toks map[string]*oauth2.Token
}

func (m *memTokenStore) Load(_ context.Context, key string) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.toks[key]; ok {
		return t, nil
	}
	return nil, auth.ErrNoToken
}

func (m *memTokenStore) Save(_ context.Context, key string, tok *oauth2.Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.toks == nil {
		m.toks = map[string]*oauth2.Token{}
	}
	m.toks[key] = tok
	return nil
}

func (m *memTokenStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.toks, key)
	return nil
}

// stateLog records reported states so tests can wait for one.
type stateLog struct {
	mu     sync.Mutex
	states []State
	wake   chan struct{}
}

func newStateLog() *stateLog { return &stateLog{wake: make(chan struct{}, 1)} }

func (l *stateLog) report(s State) {
	l.mu.Lock()
	l.states = append(l.states, s)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// waitFor returns the first state at index >= from that match accepts, and its index,
// waiting for the flow to report it. timeout only bounds a flow that never does:
// callers pass a generous one, since a busy CI machine under -race is slow.
func (l *stateLog) waitFor(t testing.TB, from int, timeout time.Duration, match func(State) bool) (State, int) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for i := from; i < len(l.states); i++ {
			if match(l.states[i]) {
				s := l.states[i]
				l.mu.Unlock()
				return s, i
			}
		}
		got := fmt.Sprintf("%+v", l.states)
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-deadline:
			t.Fatalf("state not reported within %v; got %s", timeout, got)
		}
	}
}

func isShowingCode(s State) bool { _, ok := s.(ShowingCode); return ok }
func isLinked(s State) bool      { _, ok := s.(Linked); return ok }

var registerZitadelClient sync.Once

// byUsername works around the example's device page, which records the username as the
// subject: it lets users be found by username as well as by id.
type byUsername struct{ storage.UserStore }

func (u byUsername) GetUserByID(id string) *storage.User {
	if usr := u.UserStore.GetUserByID(id); usr != nil {
		return usr
	}
	return u.UserStore.GetUserByUsername(id)
}

// startZitadelExample serves zitadel/oidc's example OpenID provider on 127.0.0.1 with a
// confidential device client "device"/"secret".
func startZitadelExample(t *testing.T) string {
	t.Helper()
	registerZitadelClient.Do(func() {
		storage.RegisterClients(storage.DeviceClient("device", "secret"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	prev := slog.Default()
	users := byUsername{storage.NewUserStore(issuer)}
	router := exampleop.SetupServer(issuer, storage.NewStorage(users), logger, false)
	slog.SetDefault(prev)
	srv := httptest.NewUnstartedServer(router)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return issuer
}

// zitadelAnswer drives the example provider's device pages as a person would: sign in
// with the user code, then allow or deny.
func zitadelAnswer(t *testing.T, issuer, userCode, action string) {
	t.Helper()
	b := browsertest.New(issuer, nil)
	p, err := b.Post("/device/login", url.Values{
		"user_code": {userCode}, "username": {"test-user2"}, "password": {"verysecure"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 || !strings.Contains(p.Body, "device") {
		t.Fatalf("login page: %d %s", p.Status, p.Body)
	}
	p, err = b.Post("/device/confirm", url.Values{"action": {action}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Body, "Device authorization "+action) {
		t.Fatalf("confirm page: %d %s", p.Status, p.Body)
	}
}

func TestDeviceFlowZitadelExample(t *testing.T) {
	issuer := startZitadelExample(t)
	store := &memTokenStore{}
	flow, err := NewFlow(Config{
		Issuer: issuer, ClientID: "device", ClientSecret: "secret",
		Scopes: []string{"openid", "profile"}, DeviceName: "Lobby screen", DeviceKind: "kiosk",
		Store: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	log, stop := run(t, flow)

	// Decline the first code: the flow says so and shows a fresh one.
	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	first := s.(ShowingCode)
	if first.UserCode == "" || !strings.HasPrefix(first.VerificationURIComplete, issuer+"/device") {
		t.Fatalf("bad code: %+v", first)
	}
	zitadelAnswer(t, issuer, first.UserCode, "denied")
	_, i = log.waitFor(t, i, 60*time.Second, func(s State) bool { _, ok := s.(Declined); return ok })
	s, i = log.waitFor(t, i, 60*time.Second, isShowingCode)
	second := s.(ShowingCode)
	if second.UserCode == first.UserCode || !second.AfterDecline {
		t.Fatalf("expected a fresh code after decline: %+v", second)
	}

	// Approve the second: linked with the account's name, tokens stored.
	zitadelAnswer(t, issuer, second.UserCode, "allowed")
	s, _ = log.waitFor(t, i, 60*time.Second, isLinked)
	linked := s.(Linked)
	if linked.DisplayName == "" || linked.Token.AccessToken == "" {
		t.Fatalf("linked without name or token: %+v", linked)
	}
	if tok, err := store.Load(ctx, flow.StoreKey()); err != nil || tok.AccessToken != linked.Token.AccessToken {
		t.Fatalf("token not stored: %v", err)
	}
	stop()

	// A restart with the stored token goes straight to Linked, without a code.
	flow2, err := NewFlow(Config{
		Issuer: issuer, ClientID: "device", ClientSecret: "secret", Store: store,
		UserinfoInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx2 := t.Context()
	log2, stop2 := run(t, flow2)
	s, i = log2.waitFor(t, 0, 60*time.Second, func(s State) bool { return isLinked(s) || isShowingCode(s) })
	if !isLinked(s) {
		t.Fatalf("restart showed a code instead of staying linked: %+v", s)
	}

	// "Unlink this display": the flow forgets its tokens and shows a fresh code. (The
	// example storage records device tokens without their client id, so its revocation
	// endpoint refuses them with invalid_client; Unlink reports that and still unlinks.
	// Revocation itself is tested against linkd.)
	if err := flow2.Unlink(ctx2); err == nil {
		t.Log("the example provider revoked the device token")
	}
	_, i = log2.waitFor(t, i, 60*time.Second, func(s State) bool { u, ok := s.(Unlinked); return ok && u.ByUs })
	log2.waitFor(t, i, 60*time.Second, isShowingCode)
	if _, err := store.Load(ctx2, flow2.StoreKey()); err == nil {
		t.Fatal("token still stored after unlink")
	}
	stop2()
}

// TestDeviceFlowOfflineKeepsCode cuts the network while a code is shown: the flow reports
// Offline, keeps the code, and links with that same code once the network is back.
func TestDeviceFlowOfflineKeepsCode(t *testing.T) {
	issuer := startZitadelExample(t)
	var offline atomic.Bool
	// All traffic goes through a transport that fails while "offline", like a pulled cable.
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if offline.Load() {
			return nil, errors.New("network is unreachable")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	flow, err := NewFlow(Config{Issuer: issuer, ClientID: "device", ClientSecret: "secret",
		Scopes: []string{"openid"}, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	log, stop := run(t, flow)
	s, i := log.waitFor(t, 0, 60*time.Second, isShowingCode)
	code := s.(ShowingCode).UserCode
	offline.Store(true)
	_, i = log.waitFor(t, i, 60*time.Second, func(s State) bool { _, ok := s.(Offline); return ok })
	offline.Store(false)
	zitadelAnswer(t, issuer, code, "allowed")
	log.waitFor(t, i, 60*time.Second, isLinked)
	log.mu.Lock()
	for _, s := range log.states {
		if sc, ok := s.(ShowingCode); ok && sc.UserCode != code {
			t.Errorf("a new code %s was shown while offline", sc.UserCode)
		}
	}
	log.mu.Unlock()
	stop()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
