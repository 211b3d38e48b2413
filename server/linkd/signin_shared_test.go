package linkd_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/linkdesk/linkdesk/server/linkd/linkdtest"
	"github.com/linkdesk/linkdesk/server/links"
)

// The app's sign-in (/login) and the phone pages (/signin) count failed sign-ins
// together, with the same words: wrong passwords on one pause signing in on the other.
func TestSignInPagesShareOneCount(t *testing.T) {
	in := linkdtest.Start(t, linkdtest.Options{})
	in.CreateUser(t, "quinn", "right")
	for n := range links.SignInFreeTries {
		_, err := in.SignIn(context.Background(), "quinn", "wrong", "")
		if err == nil || !strings.Contains(err.Error(), "That username and password don’t match") {
			t.Fatalf("wrong password %d on /login: %v", n, err)
		}
	}
	// The right password on the phone pages is refused now, saying why.
	ph := newPhone(t, in)
	_, page := ph.get("/signin")
	st, page := ph.post(page, "/signin", url.Values{"username": {"quinn"}, "password": {"right"}})
	if st != http.StatusTooManyRequests || !strings.Contains(page, "signing in to this account is paused") {
		t.Fatalf("phone sign-in after wrong passwords in the app: %d %.800s", st, page)
	}
	// And on /login itself, in the same words.
	_, err := in.SignIn(context.Background(), "quinn", "right", "")
	if err == nil || !strings.Contains(err.Error(), "signing in to this account is paused") {
		t.Fatalf("app sign-in over the limit: %v", err)
	}
}
