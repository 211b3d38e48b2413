package links

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/linkdesk/linkdesk/devices"
	"github.com/linkdesk/linkdesk/server/events"
	"github.com/linkdesk/linkdesk/server/store"
)

// "Devices waiting near you": the pending requests made from the approver's network
// (store.NetworkKey: the same IPv4 address, the same IPv6 /64), so a person can pick
// their device instead of typing its code. The list never carries a user code: each
// request is named by an opaque id, an HMAC of its code under a server key. Picking
// one never links it by itself: the person must pick, among three codes, the one the
// device shows. The three are the real code and two decoys derived from it with the
// same key, so they are the same on every call and every replica (an attacker who
// asks again learns nothing more). A wrong pick denies the request at once, and every
// pick is counted like a code lookup, per account and per address.

// NearbyLimit bounds the nearby list: the newest pending requests only.
const NearbyLimit = 20

// nearbyChoices is how many codes a person picks from.
const nearbyChoices = 3

// Errors of the nearby list.
var (
	// ErrNearbyOff: the operator turned the nearby list off (linkd serve
	// --nearby-devices=false).
	ErrNearbyOff = errors.New("links: the nearby device list is turned off")
	// ErrNoNearby: no pending request with that id from the caller's network (it was
	// approved, denied, expired, or never was). Counted by the limiter when picking.
	ErrNoNearby = errors.New("links: no such device waiting nearby")
	// ErrWrongPick: the picked code is not the device's; the request has been denied.
	ErrWrongPick = errors.New("links: wrong code picked; the request was ended")
)

// NearbyStore is the part of the store the nearby list needs (store.Store has it).
type NearbyStore interface {
	NearbyDeviceAuths(ctx context.Context, network string, now time.Time, limit int) ([]store.DeviceAuth, error)
	DenyDeviceAuth(ctx context.Context, userCode, subject string, now time.Time) error
}

// Nearby is one pending request waiting near the caller, as the list shows it.
type Nearby struct {
	ID     string // opaque, stable handle; never the code nor derivable to it
	Auth   store.DeviceAuth
	Client devices.ClientInfo
}

// NearbyRequest is the entry's wire form: no user code, device code or hash.
func (n Nearby) NearbyRequest() devices.NearbyRequest {
	d := n.Auth.Device
	d.Kind = devices.ParseKind(string(d.Kind))
	d.Name, d.Model = Label(d.Name), Label(d.Model)
	return devices.NearbyRequest{
		ID:          n.ID,
		Client:      devices.ClientInfo{ID: n.Client.ID, Name: n.Client.Name},
		Device:      d,
		RequestedAt: n.Auth.CreatedAt.UTC(),
		ExpiresAt:   n.Auth.ExpiresAt.UTC(),
	}
}

// NearbyOn reports whether the nearby list is offered (the operator may turn it off).
func (s *Service) NearbyOn() bool { return !s.cfg.NearbyOff }

// Nearby lists the pending, unexpired requests made from c's network, newest first,
// at most NearbyLimit. Errors: ErrNearbyOff, or internal ones.
func (s *Service) Nearby(ctx context.Context, c Caller) ([]Nearby, error) {
	if s.cfg.NearbyOff {
		return nil, ErrNearbyOff
	}
	ds, err := s.cfg.Store.NearbyDeviceAuths(ctx, store.NetworkKey(c.IP), s.cfg.Now(), NearbyLimit)
	if err != nil {
		return nil, fmt.Errorf("links: nearby requests: %w", err)
	}
	out := make([]Nearby, 0, len(ds))
	for _, d := range ds {
		client, err := s.client(ctx, d.ClientID)
		if err != nil {
			return nil, fmt.Errorf("links: client of nearby request: %w", err)
		}
		out = append(out, Nearby{ID: s.nearbyID(d.UserCode), Auth: d, Client: client})
	}
	return out, nil
}

// NearbyChoices returns the three codes (XXXX-XXXX) a person picks from for the
// nearby request id: its own and two decoys, the same on every call. Errors:
// ErrNearbyOff, ErrNoNearby, or internal ones.
func (s *Service) NearbyChoices(ctx context.Context, c Caller, id string) (Nearby, []string, error) {
	n, err := s.findNearby(ctx, c, id)
	if err != nil {
		return Nearby{}, nil, err
	}
	return n, s.choices(n.Auth.UserCode), nil
}

// Pick checks that code is the one the nearby request id's device shows. A right pick
// returns the request, to be confirmed and approved by its code as any other; a wrong
// one denies the request (the device's next poll gets access_denied) and returns
// ErrWrongPick. Every pick is reserved against c's code-lookup limits first and only a
// right one is uncounted. Errors: ErrNearbyOff, *RateLimitError, ErrNoNearby,
// ErrWrongPick, or internal ones.
func (s *Service) Pick(ctx context.Context, c Caller, id, code string) (Request, error) {
	if s.cfg.NearbyOff {
		return Request{}, ErrNearbyOff
	}
	keys := c.keys()
	attempt, retry, err := s.limiter.reserveCode(ctx, keys)
	if errors.Is(err, ErrRateLimited) {
		return Request{}, s.limited(ctx, keys, retry)
	}
	if err != nil {
		return Request{}, err
	}
	n, err := s.findNearby(ctx, c, id)
	if err != nil {
		return Request{}, err // an unknown id stays counted, like an unknown code
	}
	picked, _ := devices.NormalizeCode(code)
	if subtle.ConstantTimeCompare([]byte(picked), []byte(n.Auth.UserCode)) != 1 {
		return Request{}, s.wrongPick(ctx, c, n)
	}
	if err := s.limiter.Release(ctx, attempt); err != nil {
		s.log.WarnContext(ctx, "uncount a right pick", "err", err)
	}
	d := n.Auth
	return Request{Auth: d, Client: n.Client, Scopes: s.scopes(d.Scopes), SameNetwork: SameNetwork(d.RequestIP, c.IP)}, nil
}

// wrongPick ends the request n after a wrong pick: denied, its device woken, logged.
func (s *Service) wrongPick(ctx context.Context, c Caller, n Nearby) error {
	err := s.cfg.Store.DenyDeviceAuth(ctx, n.Auth.UserCode, c.Subject, s.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyUsed), errors.Is(err, store.ErrExpired):
		// Decided or gone meanwhile: nothing left to end.
	case err != nil:
		return fmt.Errorf("links: end request after a wrong pick: %w", err)
	default:
		s.cfg.Events.PublishDeviceAuth(events.DeviceAuthKey(n.Auth.UserCode), store.DeviceAuthDenied)
	}
	s.log.WarnContext(ctx, "wrong code picked for a nearby request; request ended",
		"subject", c.Subject, "client", n.Auth.ClientID, "address", AddressKey(c.IP))
	return ErrWrongPick
}

// findNearby finds the request id among those listed for c.
func (s *Service) findNearby(ctx context.Context, c Caller, id string) (Nearby, error) {
	list, err := s.Nearby(ctx, c)
	if err != nil {
		return Nearby{}, err
	}
	for _, n := range list {
		if subtle.ConstantTimeCompare([]byte(n.ID), []byte(id)) == 1 {
			return n, nil
		}
	}
	return Nearby{}, ErrNoNearby
}

// mac is the HMAC-SHA256 of label and code under the service's nearby key.
func (s *Service) mac(label, code string) []byte {
	m := hmac.New(sha256.New, s.nearbyKey)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// nearbyID is the opaque id of the request holding code: 128 bits of its HMAC.
func (s *Service) nearbyID(code string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("linkd nearby id", code)[:16])
}

// choices are code and two decoys in the code alphabet, in an order derived from
// code, all formatted XXXX-XXXX.
func (s *Service) choices(code string) []string {
	out := []string{code}
	for i := 0; len(out) < nearbyChoices; i++ {
		d := s.decoy(code, i)
		dup := false
		for _, o := range out {
			dup = dup || o == d
		}
		if !dup {
			out = append(out, d)
		}
	}
	// Put the real code at a derived place, so its position tells nothing.
	at := int(binary.BigEndian.Uint32(s.mac("linkd nearby order", code)) % nearbyChoices)
	out[0], out[at] = out[at], out[0]
	for i := range out {
		out[i] = devices.FormatCode(out[i])
	}
	return out
}

// decoy is the i-th decoy for code: CodeLength letters of the alphabet drawn from an
// HMAC stream without modulo bias.
func (s *Service) decoy(code string, i int) string {
	const alpha = devices.CodeAlphabet
	limit := byte(256 - 256%len(alpha))
	b := make([]byte, 0, devices.CodeLength)
	for block := 0; len(b) < devices.CodeLength; block++ {
		for _, x := range s.mac(fmt.Sprintf("linkd nearby decoy %d %d", i, block), code) {
			if x < limit && len(b) < devices.CodeLength {
				b = append(b, alpha[int(x)%len(alpha)])
			}
		}
	}
	return string(b)
}

// newNearbyKey is a random key for a service given none (ids and decoys then change
// when linkd restarts, and differ between replicas).
func newNearbyKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}
