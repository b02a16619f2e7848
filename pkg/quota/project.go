//go:build linux

package quota

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// From <linux/fs.h>: _IOR/_IOW('X', 31/32, struct fsxattr), which encode
// the same on every architecture Kubernetes nodes run (amd64, arm64).
const (
	fsIOCFSGetXattr    = 0x801c581f
	fsIOCFSSetXattr    = 0x401c5820
	fsXFlagProjInherit = 0x200
)

// fsxattr is struct fsxattr.
type fsxattr struct {
	XFlags     uint32
	ExtSize    uint32
	NExtents   uint32
	ProjID     uint32
	CowExtSize uint32
	_          [8]byte
}

func getXattr(f *os.File) (fsxattr, error) {
	var a fsxattr
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIOCFSGetXattr, uintptr(unsafe.Pointer(&a)))
	if errno != 0 {
		return a, errno
	}
	return a, nil
}

// ProjectID returns the project ID of an open file or directory; 0 means
// none was assigned.
func ProjectID(f *os.File) (uint32, error) {
	a, err := getXattr(f)
	if err != nil {
		return 0, fmt.Errorf("read project ID of %s: %w", f.Name(), err)
	}
	return a.ProjID, nil
}

// SetProjectID puts an open file or directory into project id. On a
// directory it also sets PROJINHERIT, so everything created inside later
// lands in the same project (and statfs on it reports the project limit).
func SetProjectID(f *os.File, id uint32) error {
	a, err := getXattr(f)
	if err != nil {
		return fmt.Errorf("read project ID of %s: %w", f.Name(), err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	a.ProjID = id
	if fi.IsDir() {
		a.XFlags |= fsXFlagProjInherit
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIOCFSSetXattr, uintptr(unsafe.Pointer(&a)))
	if errno != 0 {
		return fmt.Errorf("set project ID %d on %s: %w", id, f.Name(), errno)
	}
	return nil
}
