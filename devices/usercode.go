// Package devices holds the device-linking domain shared by the app and linkd:
// the wire types of the management API, the user-code rules, and an HTTPS client
// for that API. It never imports Fyne.
package devices

import (
	"crypto/rand"
	"errors"
	"strings"
)

// CodeAlphabet is the set of characters a user code is made of: consonants only,
// so no words are spelled and no letter looks like a digit (RFC 8628 §6.1).
const CodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// CodeLength is the number of significant characters in a user code.
const CodeLength = 8

// ErrCodeLength is returned for a code that, once normalised, is not CodeLength long.
var ErrCodeLength = errors.New("a code has 8 letters")

// InvalidCharError reports a character that can never appear in a user code.
type InvalidCharError struct{ Char rune }

func (e *InvalidCharError) Error() string {
	return "“" + string(e.Char) + "” is not used in codes"
}

// NormalizeCode upper-cases s and drops spaces and dashes, returning the canonical
// 8-letter form, or an error naming what is wrong with the input.
func NormalizeCode(s string) (string, error) {
	clean, err := CleanCodeInput(s)
	if err != nil {
		return "", err
	}
	if len(clean) != CodeLength {
		return "", ErrCodeLength
	}
	return clean, nil
}

// CleanCodeInput upper-cases s and drops spaces and dashes without checking its length,
// for validating a code while it is still being typed.
func CleanCodeInput(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		if IsCodeSeparator(r) {
			continue
		}
		up := []rune(strings.ToUpper(string(r)))
		if len(up) != 1 || !strings.ContainsRune(CodeAlphabet, up[0]) {
			return "", &InvalidCharError{Char: r}
		}
		b.WriteRune(up[0])
	}
	return b.String(), nil
}

// IsCodeSeparator reports whether r is ignored in typed codes: spaces and the
// dashes people and keyboards produce.
func IsCodeSeparator(r rune) bool {
	switch r {
	case ' ', '-', '\t', '\u00a0', '\u2010', '\u2011', '\u2013':
		return true
	}
	return false
}

// FormatCode shows a (possibly partial) normalised code as XXXX-XXXX.
func FormatCode(clean string) string {
	if len(clean) <= 4 {
		return clean
	}
	return clean[:4] + "-" + clean[4:]
}

// NewUserCode returns a fresh random user code in canonical (unformatted) form,
// drawn from crypto/rand without modulo bias.
func NewUserCode() (string, error) {
	buf := make([]byte, CodeLength)
	out := make([]byte, 0, CodeLength)
	n := byte(len(CodeAlphabet))
	limit := 256 - 256%int(n)
	for len(out) < CodeLength {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if int(c) < limit && len(out) < CodeLength {
				out = append(out, CodeAlphabet[c%n])
			}
		}
	}
	return string(out), nil
}
