package scan

import "github.com/pion/mediadevices/pkg/driver"

// Internals the external camera tests reach.
var (
	PickProperty     = pickProperty
	CopyFrame        = copyFrame
	VideoAccessError = videoAccessError
)

// StartCamera starts capture on d, a driver the test registered.
func StartCamera(d driver.Driver) (FrameReader, error) {
	c, err := startCamera(d)
	if err != nil {
		return nil, err
	}
	return c, nil
}
