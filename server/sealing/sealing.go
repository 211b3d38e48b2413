// Package sealing holds linkd's secrets key, the one secret kept outside the database:
// a 32-byte file (DIR/secrets.key) from which purpose-bound keys are derived for
// sealing access tokens and for encrypting signing keys and TOTP secrets at rest, so a
// copy of the database alone neither forges tokens nor reveals keys.
package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// KeySize is the length of a secrets key and of every key derived from it.
const KeySize = 32

// Labels of the keys derived from the secrets key; each use has its own.
const (
	LabelAccessTokens = "linkd access tokens v1"
	LabelStore        = "linkd store secrets v1"
)

// LoadOrCreateKey reads the 32-byte key at path, creating it (mode 0600, random) when
// it does not exist. A key file of the wrong size, or one that group or others may
// read, is refused rather than replaced, since replacing it would lose every secret
// sealed with it.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return create(path)
	}
	if err != nil {
		return nil, err
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("sealing: %s holds %d bytes, not a %d-byte key; restore it from a backup or remove it only if nothing was sealed with it", path, len(b), KeySize)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("sealing: %s is readable by others (%v) and could not be tightened: %w", path, fi.Mode().Perm(), err)
		}
	}
	return b, nil
}

func create(path string) ([]byte, error) {
	b := make([]byte, KeySize)
	rand.Read(b) // never fails (crypto/rand panics instead)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process made it first
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, err
	}
	return b, nil
}

// Derive returns the key for one purpose (label) from the secrets key, with HKDF-SHA256.
func Derive(secret []byte, label string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, label, KeySize)
	if err != nil {
		panic("sealing: hkdf: " + err.Error()) // only for absurd lengths
	}
	return k
}

// Box encrypts and authenticates small values with AES-256-GCM.
type Box struct{ aead cipher.AEAD }

// NewBox returns a Box over a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sealing: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plain; context binds the result to its place (for example a column and
// row id), so a sealed value copied elsewhere does not open.
func (b *Box) Seal(plain, context []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	rand.Read(nonce)
	return b.aead.Seal(nonce, nonce, plain, context)
}

// ErrOpen means a sealed value did not open: a different key, another context, or
// damage.
var ErrOpen = errors.New("sealing: value does not open with this key")

// Open decrypts what Seal made with the same key and context.
func (b *Box) Open(sealed, context []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < ns+b.aead.Overhead() {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[:ns], sealed[ns:], context)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}
