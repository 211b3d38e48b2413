//go:build linux && cgo

package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/pion/mediadevices/pkg/driver/camera"
)

// deniedHint says how to let the app use the camera: V4L2 device files
// belong to the video group.
const deniedHint = `to allow it, add your user to the "video" group (sudo usermod -aG video $USER), then log out and back in`

// videoDevices lists the V4L2 device files.
func videoDevices() []string {
	paths, _ := filepath.Glob("/dev/video*")
	return paths
}

// rescanCameras refreshes the driver's camera list, so a camera plugged in
// after the app started is found. Callers hold cameraMu.
func rescanCameras() {
	camera.Initialize()
}

// deniedError is ErrCameraDenied with the hint when err is a permission
// failure, and nil otherwise.
func deniedError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %s", ErrCameraDenied, deniedHint)
	}
	return nil
}
