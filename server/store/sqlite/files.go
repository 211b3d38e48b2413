package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/linkdesk/linkdesk/server/sealing"
)

// fileMode is the mode of the database's files: only linkd's own user may read them,
// whatever the umask, since the database holds password hashes and (without a
// secrets key) signing keys.
const fileMode = 0o600

// secureFiles prepares path before SQLite opens it: its directory is made private
// (sealing.PrivateDir: tightened to 0700 when this process's user owns it, refused
// otherwise); the database file is created 0600 (or an existing one tightened to 0600).
// On Windows, where modes do not describe access, it does nothing.
func secureFiles(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if err := sealing.PrivateDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	switch {
	case err == nil:
		f.Close()
		return os.Chmod(path, fileMode) // umask-independent
	case errors.Is(err, fs.ErrExist):
		return tighten(path)
	default:
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
}

// secureSidecars tightens the -wal and -shm files SQLite made beside path to 0600.
func secureSidecars(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if err := tighten(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// tighten makes an existing file 0600 when group or others have any access.
func tighten(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(p, fileMode); err != nil {
		return fmt.Errorf("sqlite: %s is open to other users (%v) and could not be made 0600: %w", p, fi.Mode().Perm(), err)
	}
	return nil
}
