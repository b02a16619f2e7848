package local

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The local binds start from the O_PATH descriptor local.Store.OpenDir
// returns, never from a path: a path would be resolved again by the mount,
// after the owner of an enclosing volume had the chance to swap one of its
// components for a symlink.

// bindDir bind-mounts the directory open as dir on target. The source is the
// descriptor's magic link in this process's /proc: mount(2) is called from
// here, not from an exec'd mount binary whose /proc/self would be another
// process.
func bindDir(dir *os.File, target string) error {
	source := fmt.Sprintf("/proc/self/fd/%d", dir.Fd())
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", dir.Name(), target, err)
	}
	return nil
}

// bindReadOnly bind-mounts the directory open as dir on target read-only in
// one step. The usual bind-then-remount leaves the remount in the node
// plugin's own mount namespace: through Bidirectional propagation kubelet and
// the pod get a writable copy. A detached clone made read-only before it is
// attached propagates read-only. Needs Linux 5.12 (mount_setattr).
func bindReadOnly(dir *os.File, target string) error {
	fd, err := unix.OpenTree(int(dir.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("clone %s: %w", dir.Name(), err)
	}
	defer unix.Close(fd)
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("make the bind of %s read-only: %w", dir.Name(), err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach the read-only bind of %s on %s: %w", dir.Name(), target, err)
	}
	return nil
}
