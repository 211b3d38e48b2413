package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Modes of the database's files and directory: only linkd's own user may read them,
// whatever the umask, since the database holds password hashes and (without a
// secrets key) signing keys.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// secureFiles prepares path before SQLite opens it: a directory that group or others
// may read or write is tightened to 0700 when this process's user owns it, and refused
// otherwise; the database file is created 0600 (or an existing one tightened to 0600).
// On Windows, where modes do not describe access, it does nothing.
func secureFiles(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("sqlite: data directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if !ownedByMe(fi) {
			return fmt.Errorf("sqlite: data directory %s is open to other users (%v) and belongs to another user: "+
				"make it accessible to linkd's user only (chmod 700) or choose another directory", dir, fi.Mode().Perm())
		}
		if err := os.Chmod(dir, dirMode); err != nil {
			return fmt.Errorf("sqlite: data directory %s is open to other users (%v): %w", dir, fi.Mode().Perm(), err)
		}
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
