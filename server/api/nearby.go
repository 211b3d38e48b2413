package api

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
)

// The nearby device list (docs/decisions.md, "Devices waiting near you"):
//
//	GET  /api/v1/link-requests/nearby               pending requests from the caller's network
//	GET  /api/v1/link-requests/nearby/{id}/choices  three codes, one the device's
//	POST /api/v1/link-requests/nearby/{id}/pick     {"user_code"}: the LinkRequest, or wrong_pick

// nearbyProblem answers an error of the nearby list, else as linkProblem.
func (s *server) nearbyProblem(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, links.ErrNearbyOff):
		writeProblem(w, http.StatusNotFound, devices.CodeNearbyOff, "Nearby list turned off",
			"this service does not list devices waiting nearby; type the code the device shows")
	case errors.Is(err, links.ErrNoNearby):
		writeProblem(w, http.StatusNotFound, devices.CodeNotWaiting, "No longer waiting",
			"that device is no longer waiting nearby; it may have been linked, refused or expired")
	case errors.Is(err, links.ErrWrongPick):
		writeProblem(w, http.StatusConflict, devices.CodeWrongPick, "Wrong code",
			"that is not the code the device shows; for safety its request was ended, start linking again on the device")
	default:
		s.linkProblem(w, r, what, err)
	}
}

func (s *server) nearby(w http.ResponseWriter, r *http.Request) {
	list, err := s.links.Nearby(r.Context(), s.caller(r))
	if err != nil {
		s.nearbyProblem(w, r, "nearby requests", err)
		return
	}
	out := devices.NearbyList{Requests: make([]devices.NearbyRequest, 0, len(list))}
	for _, n := range list {
		out.Requests = append(out.Requests, n.NearbyRequest())
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) nearbyChoices(w http.ResponseWriter, r *http.Request) {
	_, choices, err := s.links.NearbyChoices(r.Context(), s.caller(r), r.PathValue("id"))
	if err != nil {
		s.nearbyProblem(w, r, "nearby choices", err)
		return
	}
	writeJSON(w, http.StatusOK, devices.NearbyChoices{Choices: choices})
}

func (s *server) nearbyPick(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(http.MaxBytesReader(w, r.Body, maxBody))
	var pick devices.NearbyPick
	if err == nil {
		err = decodeJSON(bytes.NewReader(raw), &pick)
	}
	if err != nil {
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", err.Error())
		return
	}
	req, err := s.links.Pick(r.Context(), s.caller(r), r.PathValue("id"), pick.UserCode)
	if err != nil {
		s.nearbyProblem(w, r, "nearby pick", err)
		return
	}
	writeJSON(w, http.StatusOK, req.LinkRequest())
}
