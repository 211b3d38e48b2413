package devices

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

const testIssuer = "https://link.example.com"

func TestParseCodeInput(t *testing.T) {
	ok := map[string]string{
		"BCDF-GHJK":    "BCDFGHJK",
		"  bcdf ghjk ": "BCDFGHJK",
		"bcdfghjk":     "BCDFGHJK",
		"https://link.example.com/link?user_code=BCDF-GHJK":                           "BCDFGHJK",
		"https://LINK.example.com:443/link/?user_code=bcdfghjk":                       "BCDFGHJK",
		"link.example.com/link?user_code=BCDF-GHJK":                                   "BCDFGHJK",
		"linkdesk://link?issuer=https%3A%2F%2Flink.example.com&user_code=BCDF-GHJK":   "BCDFGHJK",
		"linkdesk://link?issuer=https%3A%2F%2Flink.example.com%2F&user_code=bcdfghjk": "BCDFGHJK",
		LinkURL(testIssuer, "BCDFGHJK"):                                               "BCDFGHJK",
	}
	for in, want := range ok {
		got, err := ParseCodeInput(in, testIssuer)
		if err != nil || got != want {
			t.Errorf("ParseCodeInput(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	foreign := []string{
		"https://link.example.com.evil.test/link?user_code=BCDF-GHJK",
		"https://evil.test/link?user_code=BCDF-GHJK",
		"http://link.example.com/link?user_code=BCDF-GHJK",       // scheme differs
		"https://link.example.com:8443/link?user_code=BCDF-GHJK", // port differs
		"https://user@link.example.com/link?user_code=BCDF-GHJK",
		"evil.test/link?user_code=BCDF-GHJK",
		"linkdesk://link?issuer=https%3A%2F%2Fevil.test&user_code=BCDF-GHJK",
		"linkdesk://link?issuer=https%3A%2F%2Flink.example.com%2Fother&user_code=BCDF-GHJK",
	}
	for _, in := range foreign {
		_, err := ParseCodeInput(in, testIssuer)
		var fe *ForeignLinkError
		if !errors.Is(err, ErrForeignLink) || !errors.As(err, &fe) || fe.Host == "" {
			t.Errorf("ParseCodeInput(%q) = %v; want ErrForeignLink", in, err)
		}
	}
	notLinks := []string{
		"https://link.example.com/devices?user_code=BCDF-GHJK",
		"https://link.example.com/link",
		"mailto:someone@example.com",
		"linkdesk://other?issuer=https%3A%2F%2Flink.example.com&user_code=BCDF-GHJK",
		"linkdesk://link?user_code=BCDF-GHJK",
	}
	for _, in := range notLinks {
		if _, err := ParseCodeInput(in, testIssuer); !errors.Is(err, ErrNotALink) {
			t.Errorf("ParseCodeInput(%q) = %v; want ErrNotALink", in, err)
		}
	}
	var ic *InvalidCharError
	if _, err := ParseCodeInput("BCDF-GHJ1", testIssuer); !errors.As(err, &ic) {
		t.Errorf("bad char: %v", err)
	}
	if _, err := ParseCodeInput("https://link.example.com/link?user_code=BCD", testIssuer); !errors.Is(err, ErrCodeLength) {
		t.Errorf("short code in link: %v", err)
	}
	if _, err := ParseCodeInput("", testIssuer); err == nil {
		t.Error("empty input accepted")
	}
	// An issuer with a path: the link page lives below it.
	if got, err := ParseCodeInput("https://id.example.com/tenant/link?user_code=BCDFGHJK", "https://id.example.com/tenant/"); err != nil || got != "BCDFGHJK" {
		t.Errorf("issuer with path: %q %v", got, err)
	}
}

func FuzzParseCodeInput(f *testing.F) {
	for _, s := range []string{
		"BCDF-GHJK", "bcdf ghjk", "https://link.example.com/link?user_code=BCDF-GHJK",
		"linkdesk://link?issuer=https%3A%2F%2Flink.example.com&user_code=BCDF-GHJK",
		"https://evil.test/link?user_code=BCDF-GHJK", "linkdesk:link", "://", "%zz", "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, err := ParseCodeInput(in, testIssuer)
		if err != nil {
			if code != "" {
				t.Fatalf("code %q returned with error %v", code, err)
			}
			return
		}
		if len(code) != CodeLength {
			t.Fatalf("ParseCodeInput(%q) = %q: wrong length", in, code)
		}
		for _, r := range code {
			if !strings.ContainsRune(CodeAlphabet, r) {
				t.Fatalf("ParseCodeInput(%q) = %q: %q not in alphabet", in, code, r)
			}
		}
		// A web link that was accepted must point at the issuer's host.
		if u, err := url.Parse(strings.TrimSpace(in)); err == nil && (strings.EqualFold(u.Scheme, "https") || strings.EqualFold(u.Scheme, "http")) {
			if !strings.EqualFold(u.Hostname(), "link.example.com") {
				t.Fatalf("ParseCodeInput(%q) accepted a link to %q", in, u.Hostname())
			}
		}
	})
}
