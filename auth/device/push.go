package device

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linkdesk/linkdesk/auth"
)

// waitPath is linkd's push channel below the issuer: a long poll that answers as soon as
// a device authorization changes state, so an approval reaches the device at once.
const waitPath = "/device/wait"

const (
	pushTimeout    = 40 * time.Second // a little over linkd's ~25 s long poll
	pushSafetyPoll = 60 * time.Second // token poll cadence while the push channel is live
)

// startPush long-polls linkd's {issuer}/device/wait while a code is shown and sends each
// state change ("approved", "denied", "expired") on the returned channel, which is closed
// when the push channel fails for this code. A provider without the endpoint turns push
// off for the rest of the flow. It returns nil when push is off.
func (f *Flow) startPush(ctx context.Context, deviceCode string) <-chan string {
	f.mu.Lock()
	off := f.noPush
	f.mu.Unlock()
	if off {
		return nil
	}
	out := make(chan string, 1)
	go func() {
		defer close(out)
		u := strings.TrimSuffix(f.cfg.Issuer, "/") + waitPath
		for ctx.Err() == nil {
			started := f.clock.Now()
			var ans struct {
				Status string `json:"status"`
			}
			// The push channel takes no secret: client_id and device_code in the body.
			rctx, cancel := context.WithTimeout(ctx, pushTimeout)
			err := auth.PostForm(rctx, f.hc, u, url.Values{"client_id": {f.cfg.ClientID}, "device_code": {deviceCode}}, &ans)
			cancel()
			if ctx.Err() != nil {
				return
			}
			var he *auth.HTTPError
			if errors.As(err, &he) && !he.Temporary() {
				// linkd answers an unknown device code with a problem document: stop
				// waiting on this code only. Anything else (a 404 page, 405) means the
				// provider has no push channel: poll only from now on.
				if !(he.Status == http.StatusNotFound && strings.HasPrefix(he.ContentType, "application/problem+json")) {
					f.disablePush()
				}
				return
			}
			if errors.As(err, &he) && he.Status == http.StatusNotImplemented {
				f.disablePush()
				return
			}
			if err != nil || ans.Status == "" {
				// Outage or an odd answer: fall back to polling for this code.
				f.log.Info("device flow: push channel failed; polling", "err", err)
				return
			}
			switch ans.Status {
			case "pending":
				// A long poll that comes back at once would make this loop spin.
				if f.clock.Now().Sub(started) < minBackoff && !f.sleep(ctx, minBackoff) {
					return
				}
			case "approved", "denied", "expired":
				select {
				case out <- ans.Status:
				case <-ctx.Done():
				}
				return
			default:
				return
			}
		}
	}()
	return out
}

func (f *Flow) disablePush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.noPush {
		f.log.Info("device flow: provider has no push channel; polling only")
	}
	f.noPush = true
}
