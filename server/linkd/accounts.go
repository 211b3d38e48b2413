package linkd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/server/accounts"
	"github.com/linkdesk/linkdesk/server/store"
)

// UserStore is the part of linkd's store that AddUser, EnableTOTP and DisableTOTP need.
type UserStore interface {
	CreateUser(ctx context.Context, u store.User) error
	UserByUsername(ctx context.Context, username string) (store.User, error)
	SetUserTOTP(ctx context.Context, subject, secret string) error
}

// NewSubject returns a fresh opaque, never reused account subject.
func NewSubject() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// NewUser describes an account to create with AddUser.
type NewUser struct {
	Username, DisplayName, Email, Password string
}

// AddUser hashes the password and creates the account, returning it.
func AddUser(ctx context.Context, s UserStore, n NewUser) (store.User, error) {
	n.Username = strings.TrimSpace(n.Username)
	if n.Username == "" || strings.ContainsAny(n.Username, " \t\r\n") {
		return store.User{}, errors.New("a username is needed, without spaces")
	}
	if n.Password == "" {
		return store.User{}, errors.New("a password is needed")
	}
	hash, err := accounts.HashPassword(n.Password)
	if err != nil {
		return store.User{}, err
	}
	if n.DisplayName == "" {
		n.DisplayName = n.Username
	}
	u := store.User{Subject: NewSubject(), Username: n.Username, DisplayName: n.DisplayName,
		Email: n.Email, PasswordHash: hash, CreatedAt: time.Now()}
	if err := s.CreateUser(ctx, u); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// EnableTOTP gives the account a fresh TOTP secret and returns it (base32).
func EnableTOTP(ctx context.Context, s UserStore, username string) (string, error) {
	u, err := s.UserByUsername(ctx, username)
	if err != nil {
		return "", err
	}
	secret, err := accounts.NewTOTPSecret()
	if err != nil {
		return "", err
	}
	return secret, s.SetUserTOTP(ctx, u.Subject, secret)
}

// DisableTOTP turns the account's second factor off: it signs in with its password
// alone until EnableTOTP gives it a new secret.
func DisableTOTP(ctx context.Context, s UserStore, username string) error {
	u, err := s.UserByUsername(ctx, username)
	if err != nil {
		return err
	}
	return s.SetUserTOTP(ctx, u.Subject, "")
}
