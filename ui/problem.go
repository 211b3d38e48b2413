package ui

import (
	"errors"

	"github.com/linkdesk/linkdesk/devices"
)

// problemOf finds the management API's problem answer in err's chain.
func problemOf(err error) (*devices.APIError, bool) {
	var p *devices.APIError
	if errors.As(err, &p) && p != nil {
		return p, true
	}
	return nil, false
}
