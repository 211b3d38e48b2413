package devices

import "time"

// DeviceKind says what sort of thing asked to be linked; unknown kinds are KindOther.
type DeviceKind string

// The device kinds DESIGN.md defines.
const (
	KindTV       DeviceKind = "tv"
	KindConsole  DeviceKind = "console"
	KindKiosk    DeviceKind = "kiosk"
	KindComputer DeviceKind = "computer"
	KindPhone    DeviceKind = "phone"
	KindOther    DeviceKind = "other"
)

// ParseKind maps a device_kind parameter to a known kind, KindOther when unknown.
func ParseKind(s string) DeviceKind {
	switch k := DeviceKind(s); k {
	case KindTV, KindConsole, KindKiosk, KindComputer, KindPhone:
		return k
	}
	return KindOther
}

// Me is the signed-in account, as GET /api/v1/me answers.
type Me struct {
	Subject     string `json:"subject"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
}

// ClientInfo names the app that asks for (or holds) a link.
type ClientInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	LogoURI string `json:"logo_uri,omitempty"`
}

// DeviceInfo is what a device said about itself when it asked for a code.
type DeviceInfo struct {
	Name  string     `json:"name"`
	Model string     `json:"model"`
	Kind  DeviceKind `json:"kind"`
}

// Scope is a permission with its plain-words description.
type Scope struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Origin says where a link request came from, so a person can spot a request
// that was not made in front of them.
type Origin struct {
	IP          string `json:"ip"`
	SameNetwork bool   `json:"same_network"`
	// Place is the address's approximate place, from linkd's location database;
	// omitted when linkd has none or the address is not in it.
	Place Place `json:"place,omitzero"`
}

// Line is the one line the confirm screens say about the origin, such as
// "Requested from Lisbon, Portugal (203.0.113.7) — not your network", so the app
// and the web pages word it alike.
func (o Origin) Line() string {
	where := "an unknown address"
	switch p := o.Place.String(); {
	case p != "" && o.IP != "":
		where = p + " (" + o.IP + ")"
	case p != "":
		where = p
	case o.IP != "":
		where = o.IP
	}
	if o.SameNetwork {
		return "Requested from " + where + " — your network"
	}
	return "Requested from " + where + " — not your network"
}

// Place is an approximate location of an address (city or region, and country),
// as a location database such as GeoLite2 or DB-IP Lite names it in English. It
// says roughly where a request came from; it is not proof of anything.
type Place struct {
	City        string `json:"city,omitempty"`
	Region      string `json:"region,omitempty"`
	Country     string `json:"country,omitempty"`
	CountryCode string `json:"country_code,omitempty"` // ISO 3166-1 alpha-2, e.g. "PT"
}

// String is the place in words: "Lisbon, Portugal", "Bavaria, Germany" (no city),
// "Germany", or "" when nothing is known.
func (p Place) String() string {
	local := p.City
	if local == "" {
		local = p.Region
	}
	country := p.Country
	if country == "" {
		country = p.CountryCode
	}
	switch {
	case local != "" && country != "":
		return local + ", " + country
	case local != "":
		return local
	}
	return country
}

// LinkRequest is a pending device authorization, looked up by its user code.
type LinkRequest struct {
	UserCode    string     `json:"user_code"`
	Client      ClientInfo `json:"client"`
	Device      DeviceInfo `json:"device"`
	Scopes      []Scope    `json:"scopes"`
	RequestedAt time.Time  `json:"requested_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	Origin      Origin     `json:"origin"`
}

// NearbyRequest is a pending link request made from the caller's network, as
// GET /api/v1/link-requests/nearby lists it. It never carries the user code: ID is an
// opaque handle for picking it (see NearbyChoices and NearbyPick).
type NearbyRequest struct {
	ID          string     `json:"id"`
	Client      ClientInfo `json:"client"`
	Device      DeviceInfo `json:"device"`
	RequestedAt time.Time  `json:"requested_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
}

// NearbyList is the answer of GET /api/v1/link-requests/nearby, newest first.
type NearbyList struct {
	Requests []NearbyRequest `json:"requests"`
}

// NearbyChoices is the answer of GET /api/v1/link-requests/nearby/{id}/choices: three
// codes (XXXX-XXXX), one of which the device shows; the same three on every call.
type NearbyChoices struct {
	Choices []string `json:"choices"`
}

// NearbyPick is the body of POST /api/v1/link-requests/nearby/{id}/pick: the code the
// person saw on the device. A right pick answers the LinkRequest to confirm; a wrong
// one ends the request (problem CodeWrongPick).
type NearbyPick struct {
	UserCode string `json:"user_code"`
}

// Device is a linked device: one live link between an account and a device client.
type Device struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Kind       DeviceKind `json:"kind"`
	Model      string     `json:"model"`
	Client     ClientInfo `json:"client"`
	Scopes     []Scope    `json:"scopes"`
	LinkedAt   time.Time  `json:"linked_at"`
	LastSeenAt *time.Time `json:"last_seen_at,omitempty"`
	LastIP     string     `json:"last_ip,omitempty"`
	// RequestIP is the address the device asked to be linked from. Only the approval's
	// answer and the device.linked event carry it (linkd keeps no copy on the link), so
	// the account's apps can say where a new link came from.
	RequestIP string `json:"request_ip,omitempty"`
	// LastPlace is LastIP's approximate place (see Origin.Place); omitted when unknown.
	LastPlace Place `json:"last_place,omitzero"`
	// RequestPlace is RequestIP's approximate place, carried with RequestIP only.
	RequestPlace Place `json:"request_place,omitzero"`
}

// ApproveRequest is the optional body of POST /api/v1/link-requests/{code}/approve.
type ApproveRequest struct {
	DeviceName string `json:"device_name,omitempty"`
	// ConfirmedInFront says the person ticked "I am in front of this device and I
	// started this". linkd refuses to approve a request from another network than the
	// approver's without it (CodeConfirmationRequired).
	ConfirmedInFront bool `json:"confirmed_in_front,omitempty"`
}

// ApproveResponse is the answer to an approval.
type ApproveResponse struct {
	Device Device `json:"device"`
}

// DeviceList is the answer of GET /api/v1/devices, newest first.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// RenameRequest is the body of PATCH /api/v1/devices/{id}.
type RenameRequest struct {
	Name string `json:"name"`
}

// Event is one server-sent event of GET /api/v1/events.
type Event struct {
	Type   string `json:"type"` // EventLinked, EventUnlinked or EventRenamed
	Device Device `json:"device"`
}

// Event types sent on the events stream.
const (
	EventLinked   = "device.linked"
	EventUnlinked = "device.unlinked"
	EventRenamed  = "device.renamed"
)

// Problem is an RFC 9457 problem details body with the stable Code member that
// clients switch on.
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// Stable problem codes of the management API.
const (
	CodeInvalidCode  = "invalid_code"
	CodeExpiredCode  = "expired_code"
	CodeAlreadyUsed  = "code_already_used"
	CodeRateLimited  = "rate_limited"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeBadRequest   = "bad_request"
	CodeInternal     = "internal"
	// CodeUnavailable means linkd could not read or save right now (its disk is full,
	// its database unreachable); nothing was changed, and the call can be repeated
	// after Retry-After.
	CodeUnavailable = "unavailable"
	// CodeWrongPick: the code picked for a nearby request is not the one its device
	// shows; the request has been ended (denied).
	CodeWrongPick = "wrong_pick"
	// CodeNotWaiting: the picked nearby request is no longer waiting (linked, refused
	// or expired meanwhile, or not from the caller's network).
	CodeNotWaiting = "not_waiting"
	// CodeNearbyOff: the operator turned the nearby device list off.
	CodeNearbyOff = "nearby_off"
	// CodeConfirmationRequired (422) refuses to approve a request that came from
	// another network than the approver's without "confirmed_in_front": true;
	// nothing was changed and the request is still pending.
	CodeConfirmationRequired = "confirmation_required"
)

// Well-known paths and parameters shared by linkd and its clients.
const (
	APIPrefix        = "/api/v1"
	VerificationPath = "/link"
	AppClientID      = "linkdesk"
	KioskClientID    = "linkdesk-kiosk"
	ParamDeviceName  = "device_name"
	ParamDeviceModel = "device_model"
	ParamDeviceKind  = "device_kind"
	ParamUserCode    = "user_code"
)

// Display names of the two built-in clients, for screens that would otherwise show
// their ids.
const (
	AppClientName   = "Linkdesk"
	KioskClientName = "Linkdesk kiosk"
)

// ClientName is what people see for a client known only by its id: a built-in
// client's display name, else the id itself.
func ClientName(id string) string {
	switch id {
	case AppClientID:
		return AppClientName
	case KioskClientID:
		return KioskClientName
	}
	return id
}
