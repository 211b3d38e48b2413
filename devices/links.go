package devices

import (
	"errors"
	"net/url"
	"strings"
)

// LinkScheme is the custom URL scheme of the desktop app:
// linkdesk://link?issuer=…&user_code=….
const LinkScheme = "linkdesk"

// ErrForeignLink means a pasted or scanned link points somewhere other than
// the configured service. The UI shows it as a phishing warning and does not
// use the code (RFC 8628 §5.4: a code from an attacker's page would link the
// attacker's device to this account).
var ErrForeignLink = errors.New("this link is not from your Linkdesk service")

// ErrNotALink means the text looked like a link but not a Linkdesk code link.
var ErrNotALink = errors.New("this link doesn't hold a Linkdesk code")

// ForeignLinkError is the ErrForeignLink with the host the link pointed at, so
// the warning can name it.
type ForeignLinkError struct {
	Host string // the link's host (or, for linkdesk: links, its issuer)
}

func (e *ForeignLinkError) Error() string { return ErrForeignLink.Error() + " (" + e.Host + ")" }

// Is makes errors.Is(err, ErrForeignLink) true.
func (e *ForeignLinkError) Is(target error) bool { return target == ErrForeignLink }

// ParseCodeInput reads what a person typed, pasted or scanned and returns the
// canonical user code. It accepts a bare code (any case, spaces and dashes
// ignored), a verification link {issuer}/link?user_code=… whose scheme, host and
// port (and path below them) match issuer, and an app link
// linkdesk://link?issuer=…&user_code=… naming issuer. A link to anywhere else is
// a *ForeignLinkError; bad codes give NormalizeCode's errors.
func ParseCodeInput(text, issuer string) (string, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return "", ErrCodeLength
	}
	if !strings.Contains(s, "://") && !strings.HasPrefix(strings.ToLower(s), LinkScheme+":") {
		switch {
		case strings.ContainsAny(s, "/?="):
			// "link.example.com/link?user_code=…" pasted without its scheme.
			s = "https://" + s
		case !strings.Contains(s, ":"):
			return NormalizeCode(s)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", ErrNotALink
	}
	want, err := url.Parse(strings.TrimRight(strings.TrimSpace(issuer), "/"))
	if err != nil || want.Host == "" {
		return "", errors.New("no Linkdesk service is configured")
	}
	q := u.Query()
	switch strings.ToLower(u.Scheme) {
	case LinkScheme:
		if !(strings.EqualFold(u.Host, "link") || strings.Trim(u.Opaque, "/") == "link") {
			return "", ErrNotALink
		}
		// The opaque form linkdesk:link?… keeps its query in RawQuery too.
		iss, err := url.Parse(strings.TrimRight(q.Get("issuer"), "/"))
		if err != nil || iss.Host == "" {
			return "", ErrNotALink
		}
		if !sameOrigin(iss, want) || strings.TrimRight(iss.Path, "/") != strings.TrimRight(want.Path, "/") {
			return "", &ForeignLinkError{Host: iss.Host}
		}
	case "http", "https":
		if !sameOrigin(u, want) {
			return "", &ForeignLinkError{Host: u.Host}
		}
		if strings.TrimRight(u.Path, "/") != strings.TrimRight(want.Path, "/")+VerificationPath {
			return "", ErrNotALink
		}
	default:
		return "", ErrNotALink
	}
	code := q.Get(ParamUserCode)
	if code == "" {
		return "", ErrNotALink
	}
	return NormalizeCode(code)
}

// sameOrigin compares scheme, host and port (default ports filled in).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOf(a) == portOf(b) && a.User == nil
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// LinkURL is the app link for a code at issuer, the inverse of ParseCodeInput.
func LinkURL(issuer, code string) string {
	return LinkScheme + "://link?" + url.Values{"issuer": {issuer}, ParamUserCode: {code}}.Encode()
}
