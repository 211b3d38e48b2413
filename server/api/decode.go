package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/linkdesk/linkdesk/devices"
)

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
// no name; otherwise {"device_name": "…", "confirmed_in_front": true} where an empty or
// absent name keeps the device's own (the links service checks a given one).
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
	return req, nil
}

// decodeRename reads the body of PATCH /devices/{id}: {"name": "…"} (the links service
// checks the name).
func decodeRename(body io.Reader) (devices.RenameRequest, error) {
	var req devices.RenameRequest
	raw, err := readBody(body)
	if err != nil {
		return req, err
	}
	if err := decodeJSON(bytes.NewReader(raw), &req); err != nil {
		return devices.RenameRequest{}, err
	}
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
