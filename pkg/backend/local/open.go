package local

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenDir opens the volume directory dir as an O_PATH descriptor, one
// component at a time from the base path's descriptor and never following a
// symlink. Mounting from the descriptor (/proc/self/fd/N) mounts exactly the
// directory checked here: a path string would be resolved again at mount
// time, after the owner of an enclosing volume had the chance to swap a
// component for a symlink. The caller closes the file.
func (s *Store) OpenDir(dir string) (*os.File, error) {
	// Volume IDs carry clean paths; anything else is refused, not cleaned.
	parts := strings.Split(dir, "/")
	if dir == "" {
		return nil, fmt.Errorf("volume directory %q under %s is empty", dir, s.base)
	}
	fd := int(s.rootDir.Fd())
	opened := -1
	for i, part := range parts {
		if part == "." || part == ".." || part == "" {
			return nil, closeWith(opened, fmt.Errorf("volume directory %q under %s is not a clean relative path", dir, s.base))
		}
		next, err := unix.Openat(fd, part, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if opened >= 0 {
			unix.Close(opened)
			opened = -1
		}
		if err != nil {
			at := strings.Join(parts[:i+1], "/")
			if err == unix.ENOTDIR || err == unix.ELOOP {
				return nil, fmt.Errorf("%s is not a plain directory under %s (a symlink or a file)", at, s.base)
			}
			return nil, wrap(&os.PathError{Op: "openat", Path: at, Err: err})
		}
		fd, opened = next, next
	}
	return os.NewFile(uintptr(opened), s.Path(dir)), nil
}

func closeWith(fd int, err error) error {
	if fd >= 0 {
		unix.Close(fd)
	}
	return err
}
