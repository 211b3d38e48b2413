package sealing

import (
	"fmt"
	"os"
	"runtime"
)

// PrivateDir makes sure only its owner can use dir, which holds the database and the
// key files: a directory that group or others may read, write or enter is tightened to
// 0700 when this process's user owns it, and refused with an explanation otherwise. A
// shared sticky directory such as /tmp is refused, never tightened. On Windows, where
// modes do not describe access, it does nothing.
func PrivateDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if fi.Mode()&os.ModeSticky != 0 {
		// A shared directory such as /tmp: tightening it would lock every other user out.
		return fmt.Errorf("data directory %s is a shared directory (like /tmp): give linkd a directory of its own", dir)
	}
	if !ownedByMe(fi) {
		return fmt.Errorf("data directory %s is open to other users (%v) and belongs to another user: "+
			"make it accessible to linkd's user only (chmod 700) or choose another directory", dir, fi.Mode().Perm())
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s is open to other users (%v): %w", dir, fi.Mode().Perm(), err)
	}
	return nil
}
