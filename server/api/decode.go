package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/linkdesk/linkdesk/devices"
)

// MaxDeviceNameLen is the longest device name, in characters, a person may give.
const MaxDeviceNameLen = 64

// ValidateDeviceName trims name and checks it is 1–64 characters of valid UTF-8 with
// no control or format characters (which could hide or reorder text in a list),
// returning the trimmed name.
func ValidateDeviceName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errors.New("the name is not valid UTF-8")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errors.New("the name is empty")
	}
	if n := utf8.RuneCountInString(name); n > MaxDeviceNameLen {
		return "", fmt.Errorf("the name is %d characters long; at most %d are allowed", n, MaxDeviceNameLen)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return "", errors.New("the name contains control characters")
		}
	}
	return name, nil
}

// decodeJSON reads one JSON object from body into v, refusing trailing data.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the body is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("the body has data after the JSON object")
	}
	return nil
}

// decodeApprove reads the optional body of an approval: empty (or whitespace) means
// no name; otherwise {"device_name": "…"} where an empty or absent name keeps the
// device's own, and a given one must pass ValidateDeviceName.
func decodeApprove(body io.Reader) (devices.ApproveRequest, error) {
	var req devices.ApproveRequest
	raw, err := readBody(body)
	if err != nil {
		return req, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return req, nil
	}
	if err := decodeJSON(bytes.NewReader(raw), &req); err != nil {
		return devices.ApproveRequest{}, err
	}
	if req.DeviceName != "" {
		name, err := ValidateDeviceName(req.DeviceName)
		if err != nil {
			return devices.ApproveRequest{}, err
		}
		req.DeviceName = name
	}
	return req, nil
}

// decodeRename reads the body of PATCH /devices/{id}: {"name": "…"}, validated.
func decodeRename(body io.Reader) (devices.RenameRequest, error) {
	var req devices.RenameRequest
	raw, err := readBody(body)
	if err != nil {
		return req, err
	}
	if err := decodeJSON(bytes.NewReader(raw), &req); err != nil {
		return devices.RenameRequest{}, err
	}
	name, err := ValidateDeviceName(req.Name)
	if err != nil {
		return devices.RenameRequest{}, err
	}
	req.Name = name
	return req, nil
}

// readBody reads a whole (size-limited) body, naming an over-size body plainly.
func readBody(body io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fmt.Errorf("the request body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	return raw, nil
}
