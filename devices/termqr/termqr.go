// Package termqr draws a QR code with characters for a terminal, so a person can scan a
// link or an authenticator secret off a headless box's screen with a phone. It is shared
// by cmd/linkdevice (the link address) and cmd/linkd (`users totp`).
package termqr

import "github.com/skip2/go-qrcode"

// String returns text as a QR code drawn with half-block characters (two modules per
// character row, so it fits a terminal), with medium error correction.
func String(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", err
	}
	return q.ToSmallString(false), nil
}
