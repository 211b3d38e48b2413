package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/zalando/go-keyring"
	"golang.org/x/oauth2"
)

func TestTokenStoreChunkedRoundTrip(t *testing.T) {
	keyring.MockInit()
	s := NewTokenStore(nil, 0)
	ctx := t.Context()
	big := &oauth2.Token{
		AccessToken:  strings.Repeat("a", 3*ChunkSize+100), // a JWT access token can be long
		RefreshToken: "refresh-1",
		TokenType:    "Bearer",
		Expiry:       time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if err := s.Save(ctx, "k", big); err != nil {
		t.Fatal(err)
	}
	n, err := keyring.Get(KeyringService, "token:k")
	if err != nil || n != "4" {
		t.Fatalf("chunk count = %q, %v; want 4", n, err)
	}
	for i := range 4 {
		c, err := keyring.Get(KeyringService, chunkItem(tokenItem("k"), i))
		if err != nil || len(c) > ChunkSize {
			t.Fatalf("chunk %d: len %d, %v", i, len(c), err)
		}
	}
	got, err := s.Load(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != big.AccessToken || got.RefreshToken != big.RefreshToken || !got.Expiry.Equal(big.Expiry) || got.TokenType != "Bearer" {
		t.Fatalf("round trip changed the token")
	}

	// A shorter token replaces it and leaves no stale chunks behind.
	small := &oauth2.Token{AccessToken: "short", RefreshToken: "refresh-2"}
	if err := s.Save(ctx, "k", small); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 4; i++ {
		if _, err := keyring.Get(KeyringService, chunkItem(tokenItem("k"), i)); !errors.Is(err, keyring.ErrNotFound) {
			t.Fatalf("stale chunk %d left: %v", i, err)
		}
	}
	if got, err := s.Load(ctx, "k"); err != nil || got.RefreshToken != "refresh-2" {
		t.Fatalf("load after shrink: %v %v", got, err)
	}

	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "k"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func TestTokenStoreCorruptValueReadsAsMissing(t *testing.T) {
	keyring.MockInit()
	s := NewTokenStore(nil, 0)
	_ = keyring.Set(KeyringService, "token:k", "2")
	_ = keyring.Set(KeyringService, chunkItem(tokenItem("k"), 0), `{"access_token":"x`)
	if _, err := s.Load(t.Context(), "k"); !errors.Is(err, ErrNoToken) { // chunk 1 missing
		t.Fatalf("err = %v", err)
	}
	_ = keyring.Set(KeyringService, "token:k", "1")
	if _, err := s.Load(t.Context(), "k"); !errors.Is(err, ErrNoToken) { // truncated JSON
		t.Fatalf("err = %v", err)
	}
	_ = keyring.Set(KeyringService, "token:k", "many")
	if _, err := s.Load(t.Context(), "k"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("err = %v", err)
	}
}

func TestTokenStoreSeveralAccounts(t *testing.T) {
	keyring.MockInit()
	s := NewTokenStore(nil, 0)
	ctx := t.Context()
	alice := Account{Issuer: "https://a.example", Subject: "1", Username: "alice"}
	bob := Account{Issuer: "https://a.example", Subject: "2", Username: "bob"}
	other := Account{Issuer: "https://b.example", Subject: "1", Username: "alice2"}
	for i, a := range []Account{alice, bob, other} {
		if err := s.SaveAccount(ctx, a, &oauth2.Token{AccessToken: "at", RefreshToken: "rt" + a.Username}); err != nil {
			t.Fatal(i, err)
		}
	}
	alice.DisplayName = "Alice A." // saving again updates, doesn't duplicate
	if err := s.SaveAccount(ctx, alice, &oauth2.Token{AccessToken: "at", RefreshToken: "rt-new"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Accounts(ctx)
	if err != nil || len(list) != 3 || list[0].DisplayName != "Alice A." {
		t.Fatalf("accounts = %+v, %v", list, err)
	}
	a, tok, err := s.LoadAccount(ctx, other.Key())
	if err != nil || a.Username != "alice2" || tok.RefreshToken != "rtalice2" {
		t.Fatalf("LoadAccount = %+v %v %v", a, tok, err)
	}
	if err := s.RemoveAccount(ctx, bob.Key()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadAccount(ctx, bob.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("removed account: %v", err)
	}
	if _, err := s.Load(ctx, bob.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("removed account's token still there: %v", err)
	}
	list, _ = s.Accounts(ctx)
	if len(list) != 2 {
		t.Fatalf("accounts after remove = %+v", list)
	}
	_ = s.RemoveAccount(ctx, alice.Key())
	_ = s.RemoveAccount(ctx, other.Key())
	if _, err := keyring.Get(KeyringService, accountsItem); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("empty index left behind: %v", err)
	}
}

func TestTokenStoreLongAccountIndex(t *testing.T) {
	keyring.MockInit()
	s := NewTokenStore(nil, 0)
	ctx := t.Context()
	var keys []string
	for i := range 30 {
		a := Account{Issuer: "https://link.example.com", Subject: strings.Repeat("s", 40) + string(rune('A'+i)),
			DisplayName: strings.Repeat("Zoë Ångström ", 5)}
		keys = append(keys, a.Key())
		if err := s.SaveAccount(ctx, a, &oauth2.Token{AccessToken: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := keyring.Get(KeyringService, accountsItem); err != nil || n == "1" {
		t.Fatalf("index chunk count = %q, %v; want several", n, err)
	}
	list, err := s.Accounts(ctx)
	if err != nil || len(list) != 30 || list[29].DisplayName != strings.Repeat("Zoë Ångström ", 5) {
		t.Fatalf("accounts: %d, %v", len(list), err)
	}
	for _, k := range keys {
		if err := s.RemoveAccount(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := keyring.Get(KeyringService, chunkItem(accountsItem, 0)); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("index chunks left: %v", err)
	}
}

func TestSplitChunksKeepsRunesWhole(t *testing.T) {
	v := strings.Repeat("é", ChunkSize) // 2 bytes each: a cut at ChunkSize-1 would split one
	v = "x" + v
	chunks := splitChunks(v)
	if strings.Join(chunks, "") != v {
		t.Fatal("chunks don't reassemble")
	}
	for i, c := range chunks {
		if len(c) > ChunkSize || !utf8.ValidString(c) {
			t.Fatalf("chunk %d: %d bytes, valid %v", i, len(c), utf8.ValidString(c))
		}
	}
}

// blockingKeyring never answers until released, like a Secret Service
// waiting on an unlock prompt nobody sees.
type blockingKeyring struct {
	release chan struct{}
	once    sync.Once
}

func (b *blockingKeyring) wait() { <-b.release }
func (b *blockingKeyring) Get(string, string) (string, error) {
	b.wait()
	return "", keyring.ErrNotFound
}
func (b *blockingKeyring) Set(string, string, string) error { b.wait(); return nil }
func (b *blockingKeyring) Delete(string, string) error      { b.wait(); return nil }
func (b *blockingKeyring) unblock()                         { b.once.Do(func() { close(b.release) }) }

func TestTokenStoreTimesOut(t *testing.T) {
	kr := &blockingKeyring{release: make(chan struct{})}
	defer kr.unblock()
	s := NewTokenStore(kr, 50*time.Millisecond)
	if _, err := s.Load(t.Context(), "k"); !errors.Is(err, ErrKeyringTimeout) {
		t.Fatalf("Load: %v", err)
	}
	if err := s.Save(t.Context(), "k", &oauth2.Token{AccessToken: "x"}); !errors.Is(err, ErrKeyringTimeout) {
		t.Fatalf("Save: %v", err)
	}
	if _, err := s.Accounts(t.Context()); !errors.Is(err, ErrKeyringTimeout) {
		t.Fatalf("Accounts: %v", err)
	}
}

func TestTokenStoreHonoursContext(t *testing.T) {
	kr := &blockingKeyring{release: make(chan struct{})}
	defer kr.unblock()
	s := NewTokenStore(kr, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Load(ctx, "k")
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// failingKeyring refuses every call, like a Secret Service that isn't running.
type failingKeyring struct{}

var errNoSecretService = errors.New("org.freedesktop.secrets was not provided by any .service files")

func (failingKeyring) Get(string, string) (string, error) { return "", errNoSecretService }
func (failingKeyring) Set(string, string, string) error   { return errNoSecretService }
func (failingKeyring) Delete(string, string) error        { return errNoSecretService }

func TestTokenStoreProbe(t *testing.T) {
	ctx := t.Context()
	if err := NewTokenStore(failingKeyring{}, 0).Probe(ctx); !errors.Is(err, ErrKeyringUnavailable) {
		t.Fatalf("probe of a keyring that refuses: %v, want ErrKeyringUnavailable", err)
	}
	b := &blockingKeyring{release: make(chan struct{})}
	defer b.unblock()
	if err := NewTokenStore(b, 20*time.Millisecond).Probe(ctx); !errors.Is(err, ErrKeyringTimeout) {
		t.Fatalf("probe of a keyring that hangs: %v, want ErrKeyringTimeout", err)
	}
	keyring.MockInit()
	s := NewTokenStore(nil, 0)
	if err := s.Probe(ctx); err != nil {
		t.Fatalf("probe of a working keyring: %v", err)
	}
	if _, err := keyring.Get(KeyringService, probeItem); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("the probe left its item behind: %v", err)
	}
}

// The memory keyring keeps a session-only sign-in for as long as its store lives,
// and nothing of it reaches the system keyring or a later store.
func TestMemoryKeyringKeepsSignInForThisRunOnly(t *testing.T) {
	keyring.MockInit() // stands in for the system keyring, to see that nothing lands there
	ctx := t.Context()
	s := NewTokenStore(MemoryKeyring(), 0)
	if err := s.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	acct := Account{Issuer: "https://link.example", Subject: "u1", Username: "ada"}
	tok := &oauth2.Token{AccessToken: strings.Repeat("a", 2*ChunkSize), RefreshToken: "r1"}
	if err := s.SaveAccount(ctx, acct, tok); err != nil {
		t.Fatal(err)
	}
	got, gotTok, err := s.LoadAccount(ctx, acct.Key())
	if err != nil || got != acct || gotTok.AccessToken != tok.AccessToken || gotTok.RefreshToken != "r1" {
		t.Fatalf("load from memory: %+v %v %v", got, gotTok, err)
	}

	if list, err := NewTokenStore(nil, 0).Accounts(ctx); err != nil || len(list) != 0 {
		t.Fatalf("the system keyring holds %v (%v); want nothing", list, err)
	}
	if list, err := NewTokenStore(MemoryKeyring(), 0).Accounts(ctx); err != nil || len(list) != 0 {
		t.Fatalf("a new run's memory store holds %v (%v); want nothing", list, err)
	}

	if err := s.RemoveAccount(ctx, acct.Key()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadAccount(ctx, acct.Key()); !errors.Is(err, ErrNoToken) {
		t.Fatalf("after sign-out: %v, want ErrNoToken", err)
	}
}
