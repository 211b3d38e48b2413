package device

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/linkdesk/linkdesk/auth"
)

// linkedWaitPath is linkd's push channel for a linked device below the issuer: a long
// poll with the device's own access token that answers as soon as its link is removed,
// so an unlink in the app reaches the device in about a second instead of at its next
// periodic check (docs/push-channel.md).
const linkedWaitPath = "/device/linked-wait"

// watchLink long-polls linkd's {issuer}/device/linked-wait with tok and signals on the
// returned channel when the link may be gone: linkd said "unlinked", or it refused the
// token (which then died with its link, or expired). The caller then checks the link at
// once; userinfo and the token endpoint stay the authority. The channel is closed when
// the push channel fails for now (the periodic check remains) and nil when push is off;
// a provider without the endpoint turns it off for the rest of the flow.
func (f *Flow) watchLink(ctx context.Context, tok *oauth2.Token) <-chan struct{} {
	f.mu.Lock()
	off := f.noPush || f.noLinkedPush
	f.mu.Unlock()
	if off || tok.AccessToken == "" {
		return nil
	}
	out := make(chan struct{}, 1)
	hc := oauth2.NewClient(context.WithValue(ctx, oauth2.HTTPClient, f.hc), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken, TokenType: "Bearer"}))
	u := strings.TrimSuffix(f.cfg.Issuer, "/") + linkedWaitPath
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			started := f.clock.Now()
			var ans struct {
				Status string `json:"status"`
			}
			rctx, cancel := context.WithTimeout(ctx, pushTimeout)
			err := auth.PostForm(rctx, hc, u, url.Values{}, &ans)
			cancel()
			if ctx.Err() != nil {
				return
			}
			var he *auth.HTTPError
			switch {
			case err == nil && ans.Status == "linked":
				// The wait limit passed. A long poll that comes back at once would spin.
				if f.clock.Now().Sub(started) < minBackoff && !f.sleep(ctx, minBackoff) {
					return
				}
				continue
			case err == nil && ans.Status == "unlinked":
			case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
				// The token is refused: check the link now, but never in a tight loop.
				if f.clock.Now().Sub(started) < minBackoff && !f.sleep(ctx, minBackoff) {
					return
				}
			case errors.As(err, &he) && !he.Temporary() && he.Status != http.StatusTooManyRequests &&
				!(he.Status == http.StatusNotFound && strings.HasPrefix(he.ContentType, "application/problem+json")):
				// A 404 page, 405, 501: this provider has no such channel.
				f.disableLinkedPush()
				return
			default:
				// An outage, too many waits, an odd answer: the periodic check remains.
				f.log.Info("device flow: linked push channel failed; checking periodically", "err", err)
				return
			}
			select {
			case out <- struct{}{}:
			case <-ctx.Done():
			}
			return
		}
	}()
	return out
}

func (f *Flow) disableLinkedPush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.noLinkedPush {
		f.log.Info("device flow: provider has no linked push channel; checking periodically")
	}
	f.noLinkedPush = true
}
