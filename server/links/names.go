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

// CleanName checks a name a person typed against the label rule (see Label): it must be
// valid UTF-8 with no control, format or line/paragraph separator characters (which could
// hide or reorder text in a list), and 1–64 characters once trimmed and its runs of white
// space made one space. It returns that name or a *NameError.
func CleanName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", &NameError{Reason: NameBadChars}
	}
	name, hidden := fold(name)
	if hidden {
		return "", &NameError{Reason: NameBadChars}
	}
	if name == "" {
		return "", &NameError{Reason: NameEmpty}
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return "", &NameError{Reason: NameTooLong, Len: n}
	}
	return name, nil
}

// Label makes a label a device or a stranger supplies (a device's name or model) fit to
// show by the same rule as CleanName, but never refuses it, so a device with an odd name
// still links: invalid UTF-8 and hidden characters are dropped (those that break lines
// become a space), runs of white space become one space, and the result is trimmed and
// cut to MaxNameLen characters. It may return "".
func Label(s string) string {
	s, _ = fold(strings.ToValidUTF8(s, ""))
	if r := []rune(s); len(r) > MaxNameLen {
		s = strings.TrimSpace(string(r[:MaxNameLen]))
	}
	return s
}

// hiddenRune reports whether r may not appear in a label: control characters (Cc, among
// them U+0085 and the terminal's escape), format characters (Cf: bidirectional overrides
// and isolates such as U+202E and U+2066–U+2069, zero-width characters, U+FEFF), line and
// paragraph separators (Zl, Zp), and U+FFFD, which stands for invalid UTF-8.
func hiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError
}

// fold applies the label rule to valid UTF-8 s: it drops hidden characters, turning
// those that are white space (tab, new line, U+0085, U+2028…) into a space, makes every
// run of white space one space and trims the ends. hidden reports whether s had any.
func fold(s string) (folded string, hidden bool) {
	var b strings.Builder
	b.Grow(len(s))
	space := false // a space is due before the next shown character
	for _, r := range s {
		h := hiddenRune(r)
		hidden = hidden || h
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case h:
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String(), hidden
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
