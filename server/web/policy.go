package web

import (
	"errors"
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
			Title: translate(r, "Approve from the device's network"), Heading: translate(r, "Approve this from the device's network"), Kind: "error",
			Body: translate(r, "This app can only be linked by someone on the same network as the device. Connect this phone or computer "+
				"to the device's network (for example its Wi-Fi), then try again. The device is still waiting."),
			Link: "/link/confirm", LinkText: translate(r, "Try again"),
		}
	case errors.As(err, &tooMany):
		status = http.StatusConflict
		p = messagePage{
			Title: translate(r, "Too many linked devices"), Heading: translate(r, "Unlink a device first"), Kind: "error",
			Body: translate(r, "Your account may have {{.Count}} devices of this app linked, and has that many now. "+
				"Unlink one of them, then approve again. The new device is still waiting.", "Count", tooMany.Max),
			Link: "/devices", LinkText: translate(r, "See linked devices"),
			Link2: "/link/confirm", Link2Text: translate(r, "Try again"),
		}
		for _, l := range tooMany.Linked {
			text := translate(r, "{{.Device}} (never used)", "Device", l.Name())
			if l.Device.LastSeenAt != nil {
				text = translate(r, "{{.Device}} (last used {{.Date}})", "Device", l.Name(),
					"Date", l.Device.LastSeenAt.UTC().Format(translate(r, "layout.date")))
			}
			p.Items = append(p.Items, messageItem{Text: text,
				Href: "/devices/" + url.PathEscape(l.Grant.ID) + "/unlink", HrefText: translate(r, "Unlink…")})
		}
	default:
		return false
	}
	st.sess.Code = code
	st.dirty = true
	s.render(w, r, st, status, "message", p)
	return true
}
