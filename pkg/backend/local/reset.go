package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Reset makes the (scrubbed, empty) volume directory dir look freshly
// made, so that a recycled volume carries nothing of its previous tenant:
// owned by the node plugin (root), mode exactly perm (no umask), no POSIX
// ACLs and no user.* extended attributes. Everything is done on one
// descriptor opened without following symlinks.
func (s *Store) Reset(ctx context.Context, dir string, perm os.FileMode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := s.openDir(dir)
	if err != nil {
		return fmt.Errorf("reset %s under %s: %w", dir, s.base, wrap(err))
	}
	defer unix.Close(fd)
	if err := resetFD(fd, perm); err != nil {
		return fmt.Errorf("reset %s under %s: %w", dir, s.base, err)
	}
	return nil
}

func resetFD(fd int, perm os.FileMode) error {
	if err := removeXattrs(fd); err != nil {
		return err
	}
	// What mkdir gives a directory made by this process; chown comes
	// before chmod because it may clear the set-group-ID bit.
	if err := unix.Fchown(fd, os.Geteuid(), os.Getegid()); err != nil {
		return &os.PathError{Op: "fchown", Err: err}
	}
	if err := unix.Fchmod(fd, unixMode(perm)); err != nil {
		return &os.PathError{Op: "fchmod", Err: err}
	}
	return nil
}

// removeXattrs drops the POSIX ACLs (an access ACL would also keep the old
// group bits as its mask) and every user.* attribute.
func removeXattrs(fd int) error {
	for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
		if err := unix.Fremovexattr(fd, name); err != nil && !noXattr(err) {
			return &os.PathError{Op: "removexattr " + name, Err: err}
		}
	}
	var list []byte
	for {
		size, err := unix.Flistxattr(fd, nil)
		if noXattr(err) {
			return nil
		}
		if err != nil {
			return &os.PathError{Op: "listxattr", Err: err}
		}
		list = make([]byte, size)
		n, err := unix.Flistxattr(fd, list)
		if errors.Is(err, unix.ERANGE) {
			continue // grew in between
		}
		if err != nil {
			return &os.PathError{Op: "listxattr", Err: err}
		}
		list = list[:n]
		break
	}
	for _, name := range bytes.Split(list, []byte{0}) {
		if !bytes.HasPrefix(name, []byte("user.")) {
			continue
		}
		if err := unix.Fremovexattr(fd, string(name)); err != nil && !noXattr(err) {
			return &os.PathError{Op: "removexattr " + string(name), Err: err}
		}
	}
	return nil
}

func noXattr(err error) bool {
	return errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP)
}

// unixMode is perm with the special bits where chmod wants them.
func unixMode(perm os.FileMode) uint32 {
	m := uint32(perm.Perm())
	if perm&os.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if perm&os.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if perm&os.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}
