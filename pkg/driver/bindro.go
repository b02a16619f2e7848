package driver

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// bindReadOnly bind-mounts source on target read-only in one step. The usual
// bind-then-remount leaves the remount in the node plugin's own mount
// namespace: through Bidirectional propagation kubelet and the pod get a
// writable copy. A detached clone made read-only before it is attached
// propagates read-only. Needs Linux 5.12 (mount_setattr).
func bindReadOnly(source, target string) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone %s: %w", source, err)
	}
	defer unix.Close(fd)
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return fmt.Errorf("make the bind of %s read-only: %w", source, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach the read-only bind of %s on %s: %w", source, target, err)
	}
	return nil
}
