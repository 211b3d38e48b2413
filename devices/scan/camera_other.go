//go:build !darwin && !(linux && cgo)

package scan

import (
	"errors"
	"fmt"
	"io/fs"
)

// deniedHint says how to let the app use the camera (Windows' wording).
const deniedHint = "to allow it, turn on camera access for desktop apps in the system's privacy settings"

// videoDevices is empty: there are no camera device files to check here (or,
// on Linux without cgo, no camera driver at all).
func videoDevices() []string { return nil }

// rescanCameras does nothing: the driver lists cameras when the app starts.
func rescanCameras() {}

// deniedError is ErrCameraDenied with the hint when err is a permission
// failure, and nil otherwise.
func deniedError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %s", ErrCameraDenied, deniedHint)
	}
	return nil
}
