package local

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// Removing trees works on directory descriptors, like rm -rf does: each
// entry is removed relative to its open parent, so a symlink is unlinked
// and never followed, and nothing is resolved twice. os.Root.RemoveAll is
// as safe but re-opens every directory by name per entry, which made a
// Recycle scrub of 100,000 files 1.3–1.5× slower than rm -rf
// (docs/benchmarks.md).

// removeTree removes dir and everything under it; with keepDir only what
// is inside. A missing dir is not an error.
func (s *Store) removeTree(dir string, keepDir bool) error {
	parent := s.rootDir
	if p := path.Dir(dir); p != "." {
		f, err := s.root.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		parent = f
	}
	pfd := int(parent.Fd())
	name := path.Base(dir)
	if !keepDir {
		// The common case: DeleteVolume of a volume that is already empty.
		switch err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.ENOTDIR):
			// Not a directory (a symlink planted in its place): remove the link itself.
			return ignoreMissing(unix.Unlinkat(pfd, name, 0))
		}
	}
	if err := emptyDirAt(pfd, name); err != nil {
		return ignoreMissing(err)
	}
	if keepDir {
		return nil
	}
	return ignoreMissing(unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR))
}

// emptyDirAt removes everything inside the directory name under the open
// directory pfd.
func emptyDirAt(pfd int, name string) error {
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	// Read every name before removing any: removing while reading a
	// directory stream may skip entries.
	names, err := d.Readdirnames(-1)
	if err != nil && err != io.EOF {
		return fmt.Errorf("list %s: %w", name, err)
	}
	for _, n := range names {
		// Most entries are files: try that first, one system call each.
		err := unix.Unlinkat(fd, n, 0)
		if err == nil || errors.Is(err, unix.ENOENT) {
			continue
		}
		if !errors.Is(err, unix.EISDIR) {
			return &os.PathError{Op: "unlink", Path: path.Join(name, n), Err: err}
		}
		if err := emptyDirAt(fd, n); err != nil {
			return err
		}
		if err := unix.Unlinkat(fd, n, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "rmdir", Path: path.Join(name, n), Err: err}
		}
	}
	return nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
