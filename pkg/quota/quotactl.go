//go:build linux

package quota

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// From <linux/quota.h> and <linux/dqblk_xfs.h>; x/sys/unix has no quotactl
// wrapper. The generic Q_GETQUOTA/Q_SETQUOTA work on XFS as well as ext4
// (the VFS routes them to XFS's own quota code), so one code path serves
// both filesystems; only the state query uses the XFS-style Q_XGETQSTATV,
// which ext4 answers too and which tells accounting from enforcement.
const (
	prjQuota = 2 // PRJQUOTA

	qGetQuota   = 0x800007 // Q_GETQUOTA
	qSetQuota   = 0x800008 // Q_SETQUOTA
	qXGetQStatV = 0x5808   // Q_XGETQSTATV ('X'<<8 | 8)

	qifBLimits = 1 // QIF_BLIMITS: dqb_bhardlimit and dqb_bsoftlimit are valid
	qifILimits = 4 // QIF_ILIMITS: dqb_ihardlimit and dqb_isoftlimit are valid
	qifBlock   = 1024

	fsQStatVVersion1 = 1
	fsQuotaPDQAcct   = 1 << 4 // FS_QUOTA_PDQ_ACCT
	fsQuotaPDQEnfd   = 1 << 5 // FS_QUOTA_PDQ_ENFD
)

var errNoDevice = errors.New("block device not found (on kernels before 5.14 the node plugin needs the host's /dev)")

func qcmd(cmd, typ uint32) uint32 { return cmd<<8 | typ&0xff }

// ifDqblk is struct if_dqblk. Space is in bytes, limits in 1 KiB blocks.
type ifDqblk struct {
	BHardLimit uint64
	BSoftLimit uint64
	CurSpace   uint64
	IHardLimit uint64
	ISoftLimit uint64
	CurInodes  uint64
	BTime      uint64
	ITime      uint64
	Valid      uint32
	_          uint32
}

type fsQFileStatV struct {
	Ino      uint64
	NBlks    uint64
	NExtents uint32
	_        uint32
}

// fsQuotaStatV is struct fs_quota_statv.
type fsQuotaStatV struct {
	Version      int8
	_            uint8
	Flags        uint16
	InCoreDQs    uint32
	UQuota       fsQFileStatV
	GQuota       fsQFileStatV
	PQuota       fsQFileStatV
	BTimeLimit   int32
	ITimeLimit   int32
	RTBTimeLimit int32
	BWarnLimit   uint16
	IWarnLimit   uint16
	RTBWarnLimit uint16
	_            uint16
	_            uint32
	_            [7]uint64
}

// target says how to name the filesystem to quotactl: by an open file on
// it (quotactl_fd, Linux 5.14+, needs no device node, which a node plugin
// container may not have) or by its block device for older kernels.
type target struct {
	dir    string // any directory on the filesystem
	device string // block device, for the fallback
	noFD   bool   // skip quotactl_fd; tests use it to reach the fallback
}

func (t target) quotactl(cmd uint32, id uint32, addr unsafe.Pointer) error {
	if !t.noFD {
		f, err := os.Open(t.dir)
		if err != nil {
			// %v, not %w: this ENOENT must not pass for XFS's "nothing charged".
			return fmt.Errorf("open %s: %v", t.dir, err)
		}
		defer f.Close()
		_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL_FD, f.Fd(), uintptr(cmd), uintptr(id), uintptr(addr), 0, 0)
		if errno == 0 {
			return nil
		}
		if !errors.Is(errno, unix.ENOSYS) {
			return errno
		}
	}
	// Checked apart from quotactl, whose ENOENT for a missing device would
	// read like XFS's ENOENT for a project with nothing charged.
	if _, err := os.Stat(t.device); err != nil {
		return fmt.Errorf("%w: %s: %v", errNoDevice, t.device, err)
	}
	dev, err := unix.BytePtrFromString(t.device)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL, uintptr(cmd), uintptr(unsafe.Pointer(dev)), uintptr(id), uintptr(addr), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func (t target) state() (fsQuotaStatV, error) {
	st := fsQuotaStatV{Version: fsQStatVVersion1}
	err := t.quotactl(qcmd(qXGetQStatV, prjQuota), 0, unsafe.Pointer(&st))
	return st, err
}

func (t target) get(id uint32) (ifDqblk, error) {
	var q ifDqblk
	err := t.quotactl(qcmd(qGetQuota, prjQuota), id, unsafe.Pointer(&q))
	return q, err
}

func (t target) set(id uint32, q ifDqblk) error {
	return t.quotactl(qcmd(qSetQuota, prjQuota), id, unsafe.Pointer(&q))
}
