package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/store"
)

// codeLookup is the shared front of the three link-request endpoints: it refuses a
// throttled caller before touching the code, normalises it, and on any failure counts
// one against the account and the address. ok is false when an answer has been written.
func (s *server) codeLookup(w http.ResponseWriter, r *http.Request) (code string, keys []string, ok bool) {
	at := tokenFrom(r.Context())
	keys = []string{AccountKey(at.Subject), AddressKey(s.cfg.ClientIP(r))}
	retry, err := s.limiter.Check(r.Context(), keys...)
	if errors.Is(err, ErrRateLimited) {
		s.rateLimited(w, retry)
		return "", nil, false
	}
	if err != nil {
		s.internal(w, r, "rate limit check", err)
		return "", nil, false
	}
	code, err = devices.NormalizeCode(r.PathValue("code"))
	if err != nil {
		s.fail(r.Context(), keys)
		writeProblem(w, http.StatusNotFound, devices.CodeInvalidCode, "Invalid code", "there is no such code; check it and try again")
		return "", nil, false
	}
	return code, keys, true
}

// fail counts a failed lookup; a counter error is logged, not shown to the caller.
func (s *server) fail(ctx context.Context, keys []string) {
	if err := s.limiter.Fail(ctx, keys...); err != nil {
		s.log.ErrorContext(ctx, "count failed code lookup", "err", err)
	}
}

// codeProblem answers a store error of a code lookup. It reports whether err was a
// lookup failure (which counts against the limits) rather than an internal error.
func (s *server) codeProblem(w http.ResponseWriter, r *http.Request, keys []string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.fail(r.Context(), keys)
		writeProblem(w, http.StatusNotFound, devices.CodeInvalidCode, "Invalid code", "there is no such code; check it and try again")
	case errors.Is(err, store.ErrExpired):
		s.fail(r.Context(), keys)
		writeProblem(w, http.StatusGone, devices.CodeExpiredCode, "Code expired", "this code has expired; ask the device for a new one")
	case errors.Is(err, store.ErrAlreadyUsed):
		s.fail(r.Context(), keys)
		writeProblem(w, http.StatusConflict, devices.CodeAlreadyUsed, "Code already used", "this code has already been used")
	default:
		s.internal(w, r, "link request", err)
	}
}

func (s *server) linkRequest(w http.ResponseWriter, r *http.Request) {
	code, keys, ok := s.codeLookup(w, r)
	if !ok {
		return
	}
	d, err := PendingDeviceAuth(r.Context(), s.cfg.Store, s.cfg.Now(), code)
	if err != nil {
		s.codeProblem(w, r, keys, err)
		return
	}
	client, err := s.view().Client(r.Context(), d.ClientID)
	if err != nil {
		s.internal(w, r, "client of link request", err)
		return
	}
	writeJSON(w, http.StatusOK, devices.LinkRequest{
		UserCode:    devices.FormatCode(d.UserCode),
		Client:      client,
		Device:      deviceInfo(d.Device),
		Scopes:      s.view().Scopes(d.Scopes),
		RequestedAt: d.CreatedAt.UTC(),
		ExpiresAt:   d.ExpiresAt.UTC(),
		Origin: devices.Origin{
			IP:          d.RequestIP,
			SameNetwork: SameNetwork(d.RequestIP, s.cfg.ClientIP(r)),
		},
	})
}

func (s *server) approve(w http.ResponseWriter, r *http.Request) {
	code, keys, ok := s.codeLookup(w, r)
	if !ok {
		return
	}
	req, err := decodeApprove(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeProblem(w, http.StatusBadRequest, devices.CodeBadRequest, "Bad request", err.Error())
		return
	}
	at := tokenFrom(r.Context())
	_, dev, err := s.decider().Approve(r.Context(), code, at.Subject, req.DeviceName, s.cfg.Now())
	if err != nil {
		s.codeProblem(w, r, keys, err)
		return
	}
	if dev.ID == "" { // linked, but it could not be shown (logged by Approve)
		s.internal(w, r, "device of approved link", errors.New("approved device not rendered"))
		return
	}
	writeJSON(w, http.StatusOK, devices.ApproveResponse{Device: dev})
}

func (s *server) deny(w http.ResponseWriter, r *http.Request) {
	code, keys, ok := s.codeLookup(w, r)
	if !ok {
		return
	}
	at := tokenFrom(r.Context())
	if err := s.decider().Deny(r.Context(), code, at.Subject, s.cfg.Now()); err != nil {
		s.codeProblem(w, r, keys, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func deviceInfo(d devices.DeviceInfo) devices.DeviceInfo {
	d.Kind = devices.ParseKind(string(d.Kind))
	return d
}

// view renders stored records for this API.
func (s *server) view() Renderer {
	return Renderer{Store: s.cfg.Store, DescribeScope: s.cfg.DescribeScope}
}

func (s *server) decider() Decider {
	return Decider{Store: s.cfg.Store, Events: s.cfg.Events, View: s.view(), Log: s.log}
}
