package links

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest device name, in characters, a person may give.
const MaxNameLen = 64

// NameError says why a device name was refused; Reason is one of the Name* reasons and
// Error is a short sentence the management API shows as it is.
type NameError struct {
	Reason NameReason
	Len    int // the name's length in characters, for NameTooLong
}

// NameReason classifies a refused name, so front ends can word it their own way.
type NameReason int

// Why a name is refused.
const (
	NameEmpty    NameReason = iota + 1 // nothing but spaces
	NameTooLong                        // more than MaxNameLen characters
	NameBadChars                       // invalid UTF-8, control or format characters
)

func (e *NameError) Error() string {
	switch e.Reason {
	case NameEmpty:
		return "the name is empty"
	case NameTooLong:
		return fmt.Sprintf("the name is %d characters long; at most %d are allowed", e.Len, MaxNameLen)
	}
	return "the name contains characters that cannot be shown (invalid UTF-8, control or format characters)"
}

// CleanName trims name and checks it is 1–64 characters of valid UTF-8 with no control
// or format characters (which could hide or reorder text in a list), returning the
// trimmed name or a *NameError.
func CleanName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", &NameError{Reason: NameBadChars}
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", &NameError{Reason: NameEmpty}
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return "", &NameError{Reason: NameTooLong, Len: n}
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return "", &NameError{Reason: NameBadChars}
		}
	}
	return name, nil
}

// SameNetwork reports whether two addresses are plausibly the same place: equal, both
// loopback, in one IPv4 /24, or in one IPv6 /64. Either may carry a port.
func SameNetwork(a, b string) bool {
	x, okx := parseIP(a)
	y, oky := parseIP(b)
	if !okx || !oky {
		return false
	}
	if x == y || (x.IsLoopback() && y.IsLoopback()) {
		return true
	}
	if x.Is4() != y.Is4() {
		return false
	}
	bits := 64
	if x.Is4() {
		bits = 24
	}
	px, err1 := x.Prefix(bits)
	py, err2 := y.Prefix(bits)
	return err1 == nil && err2 == nil && px == py
}

func parseIP(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
