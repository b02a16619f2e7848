//go:build linux

package quota

import (
	"errors"
	"fmt"
	"hash/fnv"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by Open when the filesystem cannot enforce
// project quotas; the message says what to change.
var ErrUnavailable = errors.New("project quotas unavailable")

// FS is a filesystem with project quotas enforced.
type FS struct {
	Mount Mount
	t     target
}

// Usage is what the filesystem charges to one project.
type Usage struct {
	Bytes  int64
	Inodes int64
	Limit  int64 // hard block limit in bytes; 0 means none
	// InodeLimit is the hard limit on files and directories; 0 means none.
	InodeLimit int64
}

// Open checks that the filesystem holding dir enforces project quotas.
func Open(dir string) (*FS, error) {
	m, err := FindMount(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	f := &FS{Mount: m, t: target{dir: dir, device: m.Source}}
	if m.FSType != "xfs" && m.FSType != "ext4" {
		return nil, f.unavailable(fmt.Sprintf("filesystem %s has no project quotas", m.FSType),
			"put it on XFS mounted with -o prjquota, or on ext4 with the project and quota features mounted with -o prjquota")
	}
	st, err := f.t.state()
	switch {
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.ESRCH):
		// What XFS and ext4 answer when mounted without quotas.
		return nil, f.unavailable(fmt.Sprintf("%s is not mounted with prjquota (quotactl: %v)", m.FSType, err), f.howTo())
	case err != nil:
		return nil, f.unavailable(fmt.Sprintf("quota state of %s: %v", m.FSType, explain(err)), f.howTo())
	case st.Flags&fsQuotaPDQEnfd == 0 && st.Flags&fsQuotaPDQAcct != 0:
		return nil, f.unavailable(fmt.Sprintf("%s counts project usage but does not enforce limits", m.FSType), f.remountHowTo())
	case st.Flags&fsQuotaPDQEnfd == 0:
		return nil, f.unavailable(fmt.Sprintf("%s is not mounted with prjquota", m.FSType), f.howTo())
	}
	return f, nil
}

func (f *FS) unavailable(why, fix string) error {
	return fmt.Errorf("%w at %s (mount point %s, device %s): %s; %s",
		ErrUnavailable, f.t.dir, f.Mount.Point, f.Mount.Source, why, fix)
}

func (f *FS) howTo() string {
	if f.Mount.FSType == "xfs" {
		return "add prjquota to its mount options (fstab) and mount it again; XFS ignores quota options on remount, and a root filesystem needs rootflags=prjquota on the kernel command line"
	}
	return fmt.Sprintf("unmount it, run tune2fs -O project -Q prjquota %s, and mount it with -o prjquota (and in fstab)", f.Mount.Source)
}

// remountHowTo is for ext4 that already has the quota feature: unlike XFS,
// ext4 turns enforcement on with a remount.
func (f *FS) remountHowTo() string {
	if f.Mount.FSType == "xfs" {
		return f.howTo()
	}
	return fmt.Sprintf("run mount -o remount,prjquota %s and add prjquota to its fstab options", f.Mount.Point)
}

// explain adds a hint to the quotactl errors that have a known cause.
func explain(err error) string {
	switch {
	case errors.Is(err, unix.ENOSYS):
		return fmt.Sprintf("%v (no quota support enabled for this filesystem, or none built into the kernel)", err)
	case errors.Is(err, unix.ESRCH):
		return fmt.Sprintf("%v (project quota is off)", err)
	case errors.Is(err, unix.ENOTBLK), errors.Is(err, unix.ENODEV):
		return fmt.Sprintf("%v (the block device is not usable; on kernels before 5.14 the node plugin needs the host's /dev)", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Sprintf("%v (needs CAP_SYS_ADMIN)", err)
	}
	return err.Error()
}

// SetLimit sets the hard block limit of project id and the inode limit
// that goes with it (InodesFor); 0 removes both. Limits are kept in 1 KiB
// units, so bytes round up to the next KiB.
func (f *FS) SetLimit(id uint32, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("quota limit %d bytes for project %d is negative", bytes, id)
	}
	blocks := uint64((bytes + qifBlock - 1) / qifBlock)
	q := ifDqblk{BHardLimit: blocks, IHardLimit: uint64(InodesFor(bytes)), Valid: qifBLimits | qifILimits}
	if err := f.t.set(id, q); err != nil {
		return fmt.Errorf("set limit of project %d on %s to %d bytes: %s", id, f.Mount.Point, bytes, explain(err))
	}
	return nil
}

// Usage reports the blocks and inodes charged to project id.
func (f *FS) Usage(id uint32) (Usage, error) {
	q, err := f.t.get(id)
	if errors.Is(err, unix.ENOENT) {
		// XFS answers ENOENT for a project with no usage and no limits.
		return Usage{}, nil
	}
	if err != nil {
		return Usage{}, fmt.Errorf("usage of project %d on %s: %s", id, f.Mount.Point, explain(err))
	}
	return Usage{Bytes: int64(q.CurSpace), Inodes: int64(q.CurInodes), Limit: int64(q.BHardLimit) * qifBlock,
		InodeLimit: int64(q.IHardLimit)}, nil
}

// InodesFor is the inode limit of a volume of the given size: one per 4 KiB
// block it may fill, at least 4096. Blocks alone do not bound empty files
// and directories, so a tenant could otherwise fill the filesystem's inode
// table, which every volume on the node shares.
func InodesFor(bytes int64) int64 {
	if bytes == 0 {
		return 0
	}
	return max(bytes/4096, minInodes)
}

const minInodes = 4096

// Project IDs Stowage picks from. They start well above the small numbers
// admins write into /etc/projects by hand.
const (
	firstID = 1 << 24
	idSpan  = 1 << 30
	probes  = 64
)

// FreeProject picks a project ID for key (a volume directory): a hash of
// the key, moved on while the filesystem already charges something to the
// ID. A directory in a project always charges at least its own inode, so
// an ID with nothing charged belongs to no live directory. Callers must
// serialise FreeProject with the SetProjectID that claims the ID.
func (f *FS) FreeProject(key string) (uint32, error) {
	h := fnv.New32a()
	h.Write([]byte(key))
	start := h.Sum32() % idSpan
	for i := uint32(0); i < probes; i++ {
		id := firstID + (start+i)%idSpan
		u, err := f.Usage(id)
		if err != nil {
			return 0, err
		}
		if u.Bytes == 0 && u.Inodes == 0 {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no free project ID for %s on %s after %d tries; too many projects in use", key, f.Mount.Point, probes)
}
