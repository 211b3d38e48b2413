package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/linkdesk/linkdesk/server/links"
)

// policyFailed shows the plain-words page for an approval the app's operator does not
// allow (links.ErrOtherNetwork, *links.TooManyDevicesError) and reports whether err
// was one. The request is still waiting, so the code is kept for another try.
func (s *server) policyFailed(w http.ResponseWriter, r *http.Request, st *state, code string, err error) bool {
	var tooMany *links.TooManyDevicesError
	var p messagePage
	var status int
	switch {
	case errors.Is(err, links.ErrOtherNetwork):
		status = http.StatusForbidden
		p = messagePage{
			Title: "Approve from the device's network", Heading: "Approve this from the device's network", Kind: "error",
			Body: "This app can only be linked by someone on the same network as the device. Connect this phone or computer " +
				"to the device's network (for example its Wi-Fi), then try again. The device is still waiting.",
			Link: "/link/confirm", LinkText: "Try again",
		}
	case errors.As(err, &tooMany):
		status = http.StatusConflict
		p = messagePage{
			Title: "Too many linked devices", Heading: "Unlink a device first", Kind: "error",
			Body: fmt.Sprintf("Your account may have %d devices of this app linked, and has that many now. "+
				"Unlink one of them, then approve again. The new device is still waiting.", tooMany.Max),
			Link: "/devices", LinkText: "See linked devices",
			Link2: "/link/confirm", Link2Text: "Try again",
		}
		for _, l := range tooMany.Linked {
			seen := "never used"
			if l.Device.LastSeenAt != nil {
				seen = "last used " + l.Device.LastSeenAt.UTC().Format("2 Jan 2006")
			}
			p.Items = append(p.Items, messageItem{Text: l.Name() + " (" + seen + ")",
				Href: "/devices/" + url.PathEscape(l.Grant.ID) + "/unlink", HrefText: "Unlink…"})
		}
	default:
		return false
	}
	st.sess.Code = code
	st.dirty = true
	s.render(w, r, st, status, "message", p)
	return true
}
