package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/devices"
)

// KeyringService is the service name every Linkdesk item in the OS keyring is filed under.
const KeyringService = "linkdesk"

// Keyring is the part of an OS keyring the token store uses; OSKeyring is the
// real one, tests inject others (keyring.MockInit, or a fake that blocks).
// Get returns keyring.ErrNotFound for a missing item.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

type osKeyring struct{}

func (osKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (osKeyring) Set(service, user, pw string) error       { return keyring.Set(service, user, pw) }
func (osKeyring) Delete(service, user string) error        { return keyring.Delete(service, user) }

// OSKeyring is the platform keyring through github.com/zalando/go-keyring
// (Secret Service, macOS Keychain, Windows Credential Manager; keyring.MockInit
// swaps it for an in-memory one in tests).
func OSKeyring() Keyring { return osKeyring{} }

// ErrNoToken is what a token store returns when it holds no (readable) token for a key.
var ErrNoToken = errors.New("auth: no stored token")

// ErrKeyringTimeout means the OS keyring did not answer in time (a locked
// Secret Service waiting on an unlock prompt, say).
var ErrKeyringTimeout = errors.New("the system keyring did not answer in time")

// ErrKeyringUnavailable wraps every other failure of the OS keyring (not installed,
// locked, refusing): the token store cannot keep or read tokens.
var ErrKeyringUnavailable = errors.New("the system keyring is unavailable")

// DefaultKeyringTimeout bounds each keyring call, for the app and the kiosk alike: a
// keyring that hangs must not hang them, yet a person has time to answer an unlock prompt.
const DefaultKeyringTimeout = 10 * time.Second

// ChunkSize is the most bytes stored in one keyring item; longer values are
// split. Windows Credential Manager takes at most 2560 bytes a credential, and
// some Secret Service setups choke on big items too.
const ChunkSize = 2048

// maxChunks bounds how many chunks a reader will assemble, so a corrupt count
// can't make it loop for long.
const maxChunks = 64

// Account is one signed-in account on this computer. It holds no secrets.
type Account struct {
	Issuer      string `json:"issuer"`
	Subject     string `json:"subject"`
	Username    string `json:"username,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
}

// Key identifies the account across issuers: issuer and subject together.
func (a Account) Key() string { return AccountKey(a.Issuer, a.Subject) }

// Me is the account in the management API's form, for screens that show it.
func (a Account) Me() devices.Me {
	return devices.Me{Subject: a.Subject, Username: a.Username, DisplayName: a.DisplayName, Email: a.Email}
}

// AccountKey is the key of the account subject at issuer.
func AccountKey(issuer, subject string) string { return issuer + " " + subject }

// TokenStore keeps tokens in the OS keyring only: never in files or
// preferences. Values longer than ChunkSize are split over several items. It
// also keeps an index of the signed-in accounts, so several can coexist.
//
// Layout under KeyringService: "token:{key}" holds the chunk count,
// "token:{key}:0".."token:{key}:{n-1}" the JSON token in pieces; "accounts"
// and "accounts:0".. hold the JSON account list the same way.
type TokenStore struct {
	kr      Keyring
	timeout time.Duration
	mu      sync.Mutex // serialises read-modify-write of the index and chunk sets
}

// NewTokenStore returns a store over kr (nil means OSKeyring()) whose calls
// each give up after timeout (0 means DefaultKeyringTimeout).
func NewTokenStore(kr Keyring, timeout time.Duration) *TokenStore {
	if kr == nil {
		kr = OSKeyring()
	}
	if timeout <= 0 {
		timeout = DefaultKeyringTimeout
	}
	return &TokenStore{kr: kr, timeout: timeout}
}

// call runs f in a goroutine and waits for it, ctx or the timeout, whichever
// comes first. A call that times out keeps running in the background; its
// result is dropped.
func (s *TokenStore) call(ctx context.Context, f func() (string, error)) (string, error) {
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.err != nil && !errors.Is(r.err, keyring.ErrNotFound) {
			return "", fmt.Errorf("%w: %w", ErrKeyringUnavailable, r.err)
		}
		return r.v, r.err
	case <-t.C:
		return "", ErrKeyringTimeout
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (s *TokenStore) get(ctx context.Context, user string) (string, error) {
	return s.call(ctx, func() (string, error) { return s.kr.Get(KeyringService, user) })
}

func (s *TokenStore) set(ctx context.Context, user, v string) error {
	_, err := s.call(ctx, func() (string, error) { return "", s.kr.Set(KeyringService, user, v) })
	return err
}

func (s *TokenStore) del(ctx context.Context, user string) error {
	_, err := s.call(ctx, func() (string, error) { return "", s.kr.Delete(KeyringService, user) })
	if errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return err
}

// tokenItem is the base item name of the token stored under key.
func tokenItem(key string) string { return "token:" + key }

// chunkItem is the name of chunk i of the value whose base item is base.
func chunkItem(base string, i int) string { return base + ":" + strconv.Itoa(i) }

// errBadCount marks a chunk count item that is not a small number.
var errBadCount = errors.New("keyring: bad chunk count")

// errCorrupt marks a chunked value with a chunk missing.
var errCorrupt = errors.New("keyring: chunk missing")

func (s *TokenStore) chunkCount(ctx context.Context, base string) (int, error) {
	v, err := s.get(ctx, base)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxChunks {
		return 0, errBadCount
	}
	return n, nil
}

// splitChunks cuts v into pieces of at most ChunkSize bytes, never inside a
// UTF-8 sequence (some keyrings insist on valid text).
func splitChunks(v string) []string {
	var chunks []string
	for len(v) > ChunkSize {
		cut := ChunkSize
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		if cut == 0 {
			cut = ChunkSize
		}
		chunks = append(chunks, v[:cut])
		v = v[cut:]
	}
	return append(chunks, v)
}

// writeChunked stores v as chunks under base: the chunks are written before
// the count, and stale chunks of a longer old value are removed after, so a
// reader sees either the old or the new value whole, or (after a crash
// mid-write) a corrupt one. The caller holds s.mu.
func (s *TokenStore) writeChunked(ctx context.Context, base, v string) error {
	old, err := s.chunkCount(ctx, base)
	if err != nil && !errors.Is(err, keyring.ErrNotFound) && !errors.Is(err, errBadCount) {
		return err
	}
	chunks := splitChunks(v)
	if len(chunks) > maxChunks {
		return fmt.Errorf("keyring: value too large (%d chunks)", len(chunks))
	}
	for i, c := range chunks {
		if err := s.set(ctx, chunkItem(base, i), c); err != nil {
			return err
		}
	}
	if err := s.set(ctx, base, strconv.Itoa(len(chunks))); err != nil {
		return err
	}
	for i := len(chunks); i < old; i++ {
		if err := s.del(ctx, chunkItem(base, i)); err != nil {
			return err
		}
	}
	return nil
}

// readChunked reassembles the value under base. A missing value is
// keyring.ErrNotFound; a damaged one errBadCount or errCorrupt. The caller
// holds s.mu.
func (s *TokenStore) readChunked(ctx context.Context, base string) (string, error) {
	n, err := s.chunkCount(ctx, base)
	if err != nil {
		return "", err
	}
	var buf strings.Builder
	for i := range n {
		c, err := s.get(ctx, chunkItem(base, i))
		if errors.Is(err, keyring.ErrNotFound) {
			return "", errCorrupt
		}
		if err != nil {
			return "", err
		}
		buf.WriteString(c)
	}
	return buf.String(), nil
}

// deleteChunked removes the value under base and its chunks; a missing value
// is not an error. The count goes first, so a half-done delete reads as
// missing. The caller holds s.mu.
func (s *TokenStore) deleteChunked(ctx context.Context, base string) error {
	n, err := s.chunkCount(ctx, base)
	if errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	if errors.Is(err, errBadCount) {
		n = maxChunks
	} else if err != nil {
		return err
	}
	if err := s.del(ctx, base); err != nil {
		return err
	}
	var errs []error
	for i := range n {
		if err := s.del(ctx, chunkItem(base, i)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// storedToken is the JSON kept in the keyring: only what refreshing needs.
type storedToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// Save stores tok under key, split into ChunkSize pieces when long; a reader
// sees the old or the new token whole, or (after a crash mid-write) one that
// Load reports as missing.
func (s *TokenStore) Save(ctx context.Context, key string, tok *oauth2.Token) error {
	if tok == nil {
		return errors.New("keyring: nil token")
	}
	b, err := json.Marshal(storedToken{tok.AccessToken, tok.TokenType, tok.RefreshToken, tok.Expiry})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeChunked(ctx, tokenItem(key), string(b))
}

// Load returns the token stored under key, or an error wrapping ErrNoToken when
// there is none (or what is there is unreadable).
func (s *TokenStore) Load(ctx context.Context, key string) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.readChunked(ctx, tokenItem(key))
	if errors.Is(err, keyring.ErrNotFound) || errors.Is(err, errBadCount) || errors.Is(err, errCorrupt) {
		return nil, fmt.Errorf("%w (%v)", ErrNoToken, err)
	}
	if err != nil {
		return nil, err
	}
	var st storedToken
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return nil, fmt.Errorf("%w (stored token unreadable)", ErrNoToken)
	}
	return &oauth2.Token{AccessToken: st.AccessToken, TokenType: st.TokenType, RefreshToken: st.RefreshToken, Expiry: st.Expiry}, nil
}

// Delete removes the token stored under key and all its chunks; deleting a
// missing token is not an error.
func (s *TokenStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteChunked(ctx, tokenItem(key))
}

const accountsItem = "accounts"

// Accounts lists the accounts signed in on this computer, in the order they
// were first added.
func (s *TokenStore) Accounts(ctx context.Context) ([]Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts(ctx)
}

func (s *TokenStore) accounts(ctx context.Context) ([]Account, error) {
	v, err := s.readChunked(ctx, accountsItem)
	if errors.Is(err, keyring.ErrNotFound) {
		return nil, nil
	}
	if err != nil && !errors.Is(err, errBadCount) && !errors.Is(err, errCorrupt) {
		return nil, err
	}
	var list []Account
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		slog.Warn("auth: account index in keyring unreadable; starting empty", "err", err)
		return nil, nil
	}
	return list, nil
}

// SaveAccount stores tok for acct and adds (or updates) acct in the account index.
func (s *TokenStore) SaveAccount(ctx context.Context, acct Account, tok *oauth2.Token) error {
	if err := s.Save(ctx, acct.Key(), tok); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.accounts(ctx)
	if err != nil {
		return err
	}
	found := false
	for i := range list {
		if list[i].Key() == acct.Key() {
			list[i], found = acct, true
		}
	}
	if !found {
		list = append(list, acct)
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return s.writeChunked(ctx, accountsItem, string(b))
}

// LoadAccount returns the account with key and its token. A missing account or
// token wraps ErrNoToken.
func (s *TokenStore) LoadAccount(ctx context.Context, key string) (Account, *oauth2.Token, error) {
	list, err := s.Accounts(ctx)
	if err != nil {
		return Account{}, nil, err
	}
	for _, a := range list {
		if a.Key() == key {
			tok, err := s.Load(ctx, key)
			return a, tok, err
		}
	}
	return Account{}, nil, fmt.Errorf("%w (no such account)", ErrNoToken)
}

// RemoveAccount deletes the account's token and drops it from the index.
func (s *TokenStore) RemoveAccount(ctx context.Context, key string) error {
	delErr := s.Delete(ctx, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.accounts(ctx)
	if err != nil {
		return errors.Join(delErr, err)
	}
	kept := list[:0]
	for _, a := range list {
		if a.Key() != key {
			kept = append(kept, a)
		}
	}
	var idxErr error
	if len(kept) == 0 {
		idxErr = s.deleteChunked(ctx, accountsItem)
	} else if b, err := json.Marshal(kept); err != nil {
		idxErr = err
	} else {
		idxErr = s.writeChunked(ctx, accountsItem, string(b))
	}
	return errors.Join(delErr, idxErr)
}

// probeItem is the item Probe writes and deletes again; no token or index uses the name.
const probeItem = "probe"

// Probe checks that the keyring can keep a sign-in, by writing and deleting a small
// item, within the store's timeout. Run it before a sign-in opens the browser, so
// the browser never says "signed in" while the app can't keep the sign-in. It
// returns ErrKeyringTimeout or an error wrapping ErrKeyringUnavailable when not.
func (s *TokenStore) Probe(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.set(ctx, probeItem, "1"); err != nil {
		return err
	}
	return s.del(ctx, probeItem)
}

// memoryKeyring is a Keyring held in this process's memory only.
type memoryKeyring struct {
	mu    sync.Mutex
	items map[string]string
}

// MemoryKeyring returns an empty Keyring that lives in this process's memory and
// nowhere else: what it holds is gone when the process ends. The app uses it for
// "sign in for this session only" when the system keyring can't be reached.
func MemoryKeyring() Keyring { return &memoryKeyring{items: map[string]string{}} }

func (m *memoryKeyring) Get(service, user string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (m *memoryKeyring) Set(service, user, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[service+"\x00"+user] = password
	return nil
}

func (m *memoryKeyring) Delete(service, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := service + "\x00" + user
	if _, ok := m.items[k]; !ok {
		return keyring.ErrNotFound
	}
	delete(m.items, k)
	return nil
}
