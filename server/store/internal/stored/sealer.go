package stored

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/linkdesk/linkdesk/server/sealing"
)

// Prefixes marking an encrypted value: a TOTP secret (text, base64 after the prefix)
// and a signing key (bytes after the prefix). Plaintext never starts with them: a TOTP
// secret is base32 and a key is PEM.
const (
	SealedTOTPPrefix = "sealed1:"
	SealedKeyPrefix  = "linkd-sealed-1\n"
)

// Sealer encrypts TOTP secrets and signing keys at rest with a key kept outside the
// database, so a copy of the database alone signs nothing and shows no second factor.
// A nil *Sealer stores them as given (and cannot open an encrypted one).
type Sealer struct{ box *sealing.Box }

// NewSealer returns a Sealer for key (32 bytes, see sealing.Derive with
// sealing.LabelStore).
func NewSealer(key []byte) (*Sealer, error) {
	box, err := sealing.NewBox(key)
	if err != nil {
		return nil, err
	}
	return &Sealer{box: box}, nil
}

func totpContext(subject string) []byte { return []byte("totp\x00" + subject) }
func keyContext(id string) []byte       { return []byte("signing key\x00" + id) }

// Enabled reports whether s encrypts (false for a nil Sealer).
func (s *Sealer) Enabled() bool { return s != nil && s.box != nil }

// SealTOTP is the stored form of subject's TOTP secret.
func (s *Sealer) SealTOTP(subject, secret string) string {
	if secret == "" || !s.Enabled() {
		return secret
	}
	return SealedTOTPPrefix + base64.RawStdEncoding.EncodeToString(s.box.Seal([]byte(secret), totpContext(subject)))
}

// OpenTOTP is the inverse of SealTOTP; a plaintext secret (stored before encryption
// was on) comes back as it is.
func (s *Sealer) OpenTOTP(subject, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, SealedTOTPPrefix)
	if !ok {
		return stored, nil
	}
	if !s.Enabled() {
		return "", fmt.Errorf("store: TOTP secret of %s is encrypted and the store was opened without the secrets key", subject)
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("store: TOTP secret of %s: %w", subject, err)
	}
	plain, err := s.box.Open(raw, totpContext(subject))
	if err != nil {
		return "", fmt.Errorf("store: TOTP secret of %s: %w", subject, err)
	}
	return string(plain), nil
}

// SealKey is the stored form of signing key id's private key.
func (s *Sealer) SealKey(id string, pem []byte) []byte {
	if !s.Enabled() {
		return pem
	}
	return append([]byte(SealedKeyPrefix), s.box.Seal(pem, keyContext(id))...)
}

// KeySealed reports whether a stored signing key is encrypted.
func KeySealed(stored []byte) bool { return bytes.HasPrefix(stored, []byte(SealedKeyPrefix)) }

// OpenKey is the inverse of SealKey.
func (s *Sealer) OpenKey(id string, stored []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(stored, []byte(SealedKeyPrefix))
	if !ok {
		return stored, nil
	}
	if !s.Enabled() {
		return nil, fmt.Errorf("store: signing key %s is encrypted and the store was opened without the secrets key", id)
	}
	plain, err := s.box.Open(rest, keyContext(id))
	if err != nil {
		return nil, fmt.Errorf("store: signing key %s: %w", id, err)
	}
	return plain, nil
}
