package api

import (
	"errors"
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
	switch {
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
