package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/links"
)

// caller is who asks, as the links service throttles it: the token's account and the
// request's address.
func (s *server) caller(r *http.Request) links.Caller {
	return links.Caller{Subject: tokenFrom(r.Context()).Subject, IP: s.cfg.ClientIP(r)}
}

// linkProblem answers an error of the links service.
func (s *server) linkProblem(w http.ResponseWriter, r *http.Request, what string, err error) {
	var limited *links.RateLimitError
	var badName *links.NameError
	var tooMany *links.TooManyDevicesError
	switch {
	case errors.Is(err, links.ErrOtherNetwork):
		writeProblem(w, http.StatusForbidden, devices.CodeOtherNetwork, "Approve from the device's network",
			"this app's operator lets only someone on the same network as the device approve it; the request is still waiting")
	case errors.As(err, &tooMany):
		tooManyDevices(w, tooMany)
	case errors.As(err, &limited):
		s.rateLimited(w, limited.RetryAfter)
	case errors.As(err, &badName):
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", badName.Error())
	case errors.Is(err, links.ErrInvalidCode):
		writeProblem(w, http.StatusNotFound, devices.CodeInvalidCode, "Invalid code", "there is no such code; check it and try again")
	case errors.Is(err, links.ErrExpiredCode):
		writeProblem(w, http.StatusGone, devices.CodeExpiredCode, "Code expired", "this code has expired; ask the device for a new one")
	case errors.Is(err, links.ErrUsedCode):
		writeProblem(w, http.StatusConflict, devices.CodeAlreadyUsed, "Code already used", "this code has already been used")
	case errors.Is(err, links.ErrConfirmationRequired):
		writeProblem(w, http.StatusUnprocessableEntity, devices.CodeConfirmationRequired, "Confirmation required",
			"this request came from another network than yours; approve it only if you are in front of the device and started this, with \"confirmed_in_front\": true")
	case errors.Is(err, links.ErrNotLinked):
		writeProblem(w, http.StatusNotFound, devices.CodeNotFound, "Not found", "there is no such linked device")
	default:
		s.internal(w, r, what, err)
	}
}

func (s *server) linkRequest(w http.ResponseWriter, r *http.Request) {
	req, err := s.links.LookUp(r.Context(), s.caller(r), r.PathValue("code"))
	if err != nil {
		s.linkProblem(w, r, "link request", err)
		return
	}
	writeJSON(w, http.StatusOK, req.LinkRequest())
}

func (s *server) approve(w http.ResponseWriter, r *http.Request) {
	req, err := decodeApprove(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", err.Error())
		return
	}
	l, err := s.links.Approve(r.Context(), s.caller(r), r.PathValue("code"),
		links.Approval{Name: req.DeviceName, InFront: req.ConfirmedInFront})
	if err != nil {
		s.linkProblem(w, r, "approve", err)
		return
	}
	writeJSON(w, http.StatusOK, devices.ApproveResponse{Device: l.Device})
}

func (s *server) deny(w http.ResponseWriter, r *http.Request) {
	if _, err := s.links.Deny(r.Context(), s.caller(r), r.PathValue("code")); err != nil {
		s.linkProblem(w, r, "deny", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// tooManyDevices answers a refusal over the client's MaxDevices: problem
// too_many_devices, whose linked_devices member names the account's devices of that
// client, so the person can unlink one first.
func tooManyDevices(w http.ResponseWriter, e *links.TooManyDevicesError) {
	linked := make([]devices.Device, 0, len(e.Linked))
	for _, l := range e.Linked {
		linked = append(linked, l.Device)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusConflict)
	_ = json.NewEncoder(w).Encode(struct {
		devices.Problem
		LinkedDevices []devices.Device `json:"linked_devices"`
	}{devices.Problem{Type: "about:blank", Title: "Too many linked devices", Status: http.StatusConflict, Code: devices.CodeTooManyDevices,
		Detail: fmt.Sprintf("this app may be linked to %d devices of one account; unlink one of them first (the request is still waiting)", e.Max)},
		linked})
}
