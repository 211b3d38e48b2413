package scan

import (
	"fmt"
	"strings"
)

// deniedHint says how to let the app use the camera on macOS.
const deniedHint = "to allow it, turn Linkdesk on in System Settings › Privacy & Security › Camera (and close other apps using the camera)"

// videoDevices is empty: macOS has no camera device files to check.
func videoDevices() []string { return nil }

// rescanCameras does nothing: the AVFoundation driver lists cameras when the
// app starts.
func rescanCameras() {}

// deniedError is ErrCameraDenied with the hint when err is AVFoundation's
// failure to open the capture device, which is what a refused camera
// permission (or a camera held by another app) gives; nil otherwise.
func deniedError(err error) error {
	if strings.Contains(err.Error(), "Failed to init device") {
		return fmt.Errorf("%w: %s", ErrCameraDenied, deniedHint)
	}
	return nil
}
