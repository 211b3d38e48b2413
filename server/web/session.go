package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Sessions live entirely in a cookie sealed with AES-256-GCM: the store has no session
// table, and a sealed cookie is both signed (tamper-proof) and encrypted (the pending
// user code and account id are not readable by the browser). The key comes from
// Config.SessionKey or is made at start and kept only in memory.
//
// A cookie cannot be withdrawn from a browser, so sign-out (and every replacement of a
// session at sign-in) also records the session id in the store until the session would
// have expired anyway (SignOutStore): the refusal holds across restarts and replicas,
// and the store drops records as they expire, so the list stays bounded.

const (
	cookieSecure   = "__Host-linkd_web" // __Host-: Secure, Path=/, no Domain (cannot be set by a sibling host)
	cookieInsecure = "linkd_web"
	// anonymousLifetime bounds a session that has not signed in (CSRF token, pending code).
	anonymousLifetime = time.Hour
	// totpLifetime bounds the step between a correct password and the one-time code.
	totpLifetime = 5 * time.Minute
)

// session is what the cookie carries. Short JSON names keep the cookie small.
type session struct {
	ID      string `json:"i"`           // random; replaced on every sign-in (no fixation)
	CSRF    string `json:"c"`           // per-session CSRF token, replaced with ID
	Expires int64  `json:"e"`           // unix seconds
	Subject string `json:"s,omitempty"` // signed-in account
	Auth    int64  `json:"a,omitempty"` // sign-in time, unix seconds
	// Pending second factor: the password was right for PendingSubject.
	PendingSubject string `json:"p,omitempty"`
	PendingUntil   int64  `json:"pu,omitempty"`
	PendingFor     string `json:"pf,omitempty"` // the auth request of the app's sign-in (/login); "" for /signin
	Code           string `json:"u,omitempty"`  // canonical user code being linked
	Next           string `json:"n,omitempty"`  // where to go after sign-in (a local path)
	Flash          string `json:"f,omitempty"`  // one-time notice for the next page
	FlashErr       bool   `json:"fe,omitempty"` // the notice reports a problem
}

// state is one request's view of its session; handlers change sess and mark it dirty.
type state struct {
	sess  session
	dirty bool
	saved bool
}

func (st *state) signedIn() bool { return st.sess.Subject != "" }

// SignOutStore keeps signed-out sessions (store.Store has it).
type SignOutStore interface {
	AddSignOut(ctx context.Context, sessionID string, expires, now time.Time) error
	SignedOut(ctx context.Context, sessionID string, now time.Time) (bool, error)
}

// signOutTimeout bounds recording a sign-out, which runs outside any request context.
const signOutTimeout = 10 * time.Second

type sessions struct {
	aead     cipher.AEAD
	name     string
	secure   bool
	lifetime time.Duration
	now      func() time.Time
	signOuts SignOutStore
	log      *slog.Logger
}

func newSessions(key []byte, secure bool, lifetime time.Duration, now func() time.Time, signOuts SignOutStore, log *slog.Logger) (*sessions, error) {
	var k [32]byte
	if len(key) == 0 {
		if _, err := rand.Read(k[:]); err != nil {
			return nil, err
		}
	} else {
		// Derive a purpose-bound key so the same secret can serve other uses safely.
		k = sha256.Sum256(append([]byte("linkd web session v1\x00"), key...))
	}
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	name := cookieInsecure
	if secure {
		name = cookieSecure
	}
	return &sessions{aead: aead, name: name, secure: secure, lifetime: lifetime, now: now, signOuts: signOuts, log: log}, nil
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("web: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// fresh returns a new anonymous session.
func (m *sessions) fresh() session {
	return session{ID: randomToken(), CSRF: randomToken(), Expires: m.now().Add(anonymousLifetime).Unix()}
}

// load reads the request's session, or starts a new one when there is none, it does not
// open, it has expired or it was signed out.
func (m *sessions) load(r *http.Request) *state {
	c, err := r.Cookie(m.name)
	if err == nil {
		if s, err := m.open(r.Context(), c.Value); err == nil {
			return &state{sess: s}
		}
	}
	return &state{sess: m.fresh(), dirty: true}
}

func (m *sessions) open(ctx context.Context, value string) (session, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return session{}, err
	}
	ns := m.aead.NonceSize()
	if len(raw) < ns {
		return session{}, errors.New("short cookie")
	}
	plain, err := m.aead.Open(nil, raw[:ns], raw[ns:], []byte(m.name))
	if err != nil {
		return session{}, err
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil {
		return session{}, err
	}
	now := m.now().Unix()
	if s.ID == "" || s.CSRF == "" || s.Expires <= now {
		return session{}, errors.New("expired session")
	}
	// A storage fault refuses the session too: better signed out than a sign-out ignored.
	gone, err := m.signOuts.SignedOut(ctx, s.ID, m.now())
	if err != nil {
		m.log.Warn("session sign-out check failed", "err", err)
		return session{}, err
	}
	if gone {
		return session{}, errors.New("signed-out session")
	}
	return s, nil
}

func (m *sessions) seal(s session) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, m.aead.NonceSize(), m.aead.NonceSize()+len(plain)+m.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(m.aead.Seal(nonce, nonce, plain, []byte(m.name))), nil
}

// save writes the session cookie when it changed. Call before writing the response.
func (m *sessions) save(w http.ResponseWriter, st *state) error {
	if !st.dirty || st.saved {
		return nil
	}
	v, err := m.seal(st.sess)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     m.name,
		Value:    v,
		Path:     "/",
		Expires:  time.Unix(st.sess.Expires, 0),
		MaxAge:   int(st.sess.Expires - m.now().Unix()),
		Secure:   m.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	st.saved = true
	return nil
}

// signIn makes st a signed-in session for subject with a brand-new id and CSRF token,
// keeping only the pending code and destination (session fixation defence).
func (m *sessions) signIn(st *state, subject string) {
	old := st.sess
	m.revoke(old)
	now := m.now()
	st.sess = session{
		ID:      randomToken(),
		CSRF:    randomToken(),
		Expires: now.Add(m.lifetime).Unix(),
		Subject: subject,
		Auth:    now.Unix(),
		Code:    old.Code,
		Next:    old.Next,
	}
	st.dirty = true
}

// pendingSecondFactor moves st to "password right, one-time code needed", again with a
// new id so a planted anonymous cookie never reaches the signed-in state.
func (m *sessions) pendingSecondFactor(st *state, subject string) {
	old := st.sess
	m.revoke(old)
	st.sess = m.fresh()
	st.sess.Code, st.sess.Next = old.Code, old.Next
	st.sess.PendingSubject = subject
	st.sess.PendingUntil = m.now().Add(totpLifetime).Unix()
	st.dirty = true
}

// signOut revokes st's session and replaces it with a fresh anonymous one.
func (m *sessions) signOut(st *state) {
	m.revoke(st.sess)
	st.sess = m.fresh()
	st.dirty = true
}

// revoke records s as signed out in the store until it expires. A failure is logged:
// the cookie is still replaced in this browser, and the session dies at its expiry.
func (m *sessions) revoke(s session) {
	now := m.now()
	if s.ID == "" || s.Expires <= now.Unix() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), signOutTimeout)
	defer cancel()
	if err := m.signOuts.AddSignOut(ctx, s.ID, time.Unix(s.Expires, 0), now); err != nil {
		m.log.Warn("session sign-out not recorded", "err", err)
	}
}

// checkCSRF compares a submitted token with the session's in constant time.
func checkCSRF(st *state, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(st.sess.CSRF)) == 1
}
