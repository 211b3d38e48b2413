package web

import (
	"context"
	"errors"
	"net/http"
)

// AuthRequests is the OpenID provider's side of the app's sign-in at /login
// (server/provider's Provider has it): the sign-in pages look up the auth request the
// provider sent the browser with, and hand it back signed in.
type AuthRequests interface {
	// AuthRequestClient names the app of auth request id, or fails when id is no
	// auth request waiting for a sign-in (unknown, expired or already done).
	AuthRequestClient(ctx context.Context, id string) (string, error)
	// CompleteAuthRequest records that subject signed in (by amr) for auth request id
	// and returns where to send the browser on to the app.
	CompleteAuthRequest(ctx context.Context, id, subject string, amr []string) (string, error)
}

// loginCSP is the pages' policy without form-action: after the last step of /login
// the browser follows redirects to the app's loopback address, which form-action
// 'self' would block in browsers that apply it to redirects.
const loginCSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'"

// loginFlow is the flow of auth request id, or, after answering that it has gone, false.
func (s *server) loginFlow(w http.ResponseWriter, r *http.Request, st *state, id string) (flow, bool) {
	w.Header().Set("Content-Security-Policy", loginCSP)
	name, err := "", error(nil)
	if id == "" {
		err = errNoAuthRequest
	} else {
		name, err = s.cfg.AuthRequests.AuthRequestClient(r.Context(), id)
	}
	if err != nil {
		s.log.InfoContext(r.Context(), "sign-in for an auth request that is gone", "err", err)
		s.render(w, r, st, http.StatusBadRequest, "message", messagePage{
			Title: translate(r, "Sign-in expired"), Heading: translate(r, "This sign-in has expired"), Kind: "error",
			Body: translate(r, "This sign-in has expired or is not valid. Go back to the app and start signing in again."),
		})
		return flow{}, false
	}
	return flow{Action: "/login", AuthRequestID: id, ClientName: name}, true
}

// loginForm is GET /login?authRequestID=…, where the provider sends the app's sign-in:
// the same pages as /signin.
func (s *server) loginForm(w http.ResponseWriter, r *http.Request, st *state) {
	f, ok := s.loginFlow(w, r, st, r.URL.Query().Get("authRequestID"))
	if !ok {
		return
	}
	s.showSignin(w, r, st, signinPage{flow: f})
}

// loginSubmit is POST /login: a step of the app's sign-in, or (switch=1) back to the
// password step for a different account.
func (s *server) loginSubmit(w http.ResponseWriter, r *http.Request, st *state) {
	f, ok := s.loginFlow(w, r, st, r.PostForm.Get("authRequestID"))
	if !ok {
		return
	}
	if r.PostForm.Get("switch") == "1" {
		s.clearPending(st)
		s.redirect(w, r, st, f.start())
		return
	}
	s.signinStep(w, r, st, f)
}

var errNoAuthRequest = errors.New("no authRequestID")
