package linkd_test

import (
	"net/http"
	"testing"

	"github.com/linkdesk/linkdesk/server/linkd"
)

func TestClientIP(t *testing.T) {
	trusted, err := linkd.ParseTrustedProxies([]string{"10.0.0.0/8, 192.0.2.1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	ip := linkd.ClientIP(trusted)
	for _, tc := range []struct {
		peer   string
		header http.Header
		want   string
	}{
		{"203.0.113.5:4000", http.Header{"X-Forwarded-For": {"1.2.3.4"}}, "203.0.113.5"}, // untrusted peer
		{"10.0.0.1:4000", nil, "10.0.0.1"},                                               // trusted, no header
		{"10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4, 198.51.100.2"}}, "198.51.100.2"},
		{"10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.2, 10.9.9.9"}}, "198.51.100.2"},
		{"10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4", "198.51.100.2:555"}}, "198.51.100.2"},
		{"10.0.0.1:4000", http.Header{"X-Forwarded-For": {"10.1.1.1, 10.2.2.2"}}, "10.1.1.1"}, // all trusted: the first
		{"10.0.0.1:4000", http.Header{"X-Forwarded-For": {"1.2.3.4, garbage"}}, "10.0.0.1"},   // the proxy that vouched
		{"[::ffff:10.0.0.1]:4000", http.Header{"X-Forwarded-For": {"::ffff:198.51.100.2"}}, "198.51.100.2"},
		{"[2001:db8::1]:4000", http.Header{"Forwarded": {`for=unknown, For="[2001:db9::2]:80"`}}, "2001:db9::2"},
		{"192.0.2.1:4000", http.Header{"Forwarded": {"for=_hidden"}}, "192.0.2.1"},
		// X-Forwarded-For wins over Forwarded, which a client may have sent itself.
		{"10.0.0.1:4000", http.Header{"X-Forwarded-For": {"198.51.100.2"}, "Forwarded": {"for=1.2.3.4"}}, "198.51.100.2"},
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.peer
		for k, v := range tc.header {
			r.Header[k] = v
		}
		if got := ip(r); got != tc.want {
			t.Errorf("peer %s %v: %q, want %q", tc.peer, tc.header, got, tc.want)
		}
	}
	if _, err := linkd.ParseTrustedProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("bad CIDR accepted")
	}
}
