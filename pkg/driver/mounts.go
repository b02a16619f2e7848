package driver

import (
	"fmt"

	mount "k8s.io/mount-utils"
)

// sameMountElsewhere returns another mount point that shows the same
// directory as target (same device and same root inside it), or "". Bind
// mounts of a local volume and NFS mounts of the same export directory both
// look like that in the kernel's mount table.
func sameMountElsewhere(target string) (string, error) {
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read the mount table: %w", err)
	}
	var mine *mount.MountInfo
	for i := range infos {
		if infos[i].MountPoint == target {
			mine = &infos[i]
		}
	}
	if mine == nil {
		return "", fmt.Errorf("%s is not in the mount table", target)
	}
	for _, m := range infos {
		if m.MountPoint != target && m.Major == mine.Major && m.Minor == mine.Minor && m.Root == mine.Root {
			return m.MountPoint, nil
		}
	}
	return "", nil
}
