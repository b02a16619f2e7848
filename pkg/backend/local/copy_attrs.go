package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// attrs is what a copy keeps of an entry besides its data and xattrs.
type attrs struct {
	mode     uint32 // permission bits with setuid, setgid and sticky
	uid, gid uint32
	times    [2]unix.Timespec // access, modification
}

func attrsOf(st *unix.Statx_t) attrs {
	ts := func(t unix.StatxTimestamp) unix.Timespec {
		return unix.Timespec{Sec: t.Sec, Nsec: int64(t.Nsec)}
	}
	return attrs{mode: uint32(st.Mode) & 0o7777, uid: st.Uid, gid: st.Gid,
		times: [2]unix.Timespec{ts(st.Atime), ts(st.Mtime)}}
}

// setAttrs gives dst (a file or directory open at fd) src's attributes;
// name is the entry's in the current directory ("" for the directory). The
// order matters: chown clears setuid/setgid and file capabilities, so it
// goes first; chmod after the ACL xattr leaves the ACL's mask as the
// source's mode says; times last, as any change above moves ctime only.
func (c *copier) setAttrs(src, dst int, a *attrs, name string) error {
	if err := unix.Fchown(dst, int(a.uid), int(a.gid)); err != nil {
		return &os.PathError{Op: "chown", Path: c.where(name) + " (copy)", Err: err}
	}
	if err := c.copyXattrs(fdXattrs{src}, fdXattrs{dst}, name); err != nil {
		return err
	}
	if err := unix.Fchmod(dst, a.mode); err != nil {
		return &os.PathError{Op: "chmod", Path: c.where(name) + " (copy)", Err: err}
	}
	if err := futimens(dst, &a.times); err != nil {
		return &os.PathError{Op: "utimens", Path: c.where(name) + " (copy)", Err: err}
	}
	return nil
}

// futimens is utimensat(fd, NULL, ...): x/sys has no call that sets
// nanosecond times on a descriptor.
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// setLinkAttrs is setAttrs for an entry that cannot be opened to be
// written (a symlink, a FIFO): by name in its directory, never following.
func (c *copier) setLinkAttrs(srcDir, dstDir int, name string, a *attrs, symlink bool) error {
	if err := unix.Fchownat(dstDir, name, int(a.uid), int(a.gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: c.where(name) + " (copy)", Err: err}
	}
	if err := c.copyXattrs(procPath(srcDir, name), procPath(dstDir, name), name); err != nil {
		return err
	}
	if !symlink { // a symlink's mode is always 0777
		if err := unix.Fchmodat(dstDir, name, a.mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: c.where(name) + " (copy)", Err: err}
		}
	}
	if err := unix.UtimesNanoAt(dstDir, name, a.times[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimens", Path: c.where(name) + " (copy)", Err: err}
	}
	return nil
}

func (c *copier) copySymlink(l *copyLevel, name string, st *unix.Statx_t) error {
	// A target is shorter than PATH_MAX; a full buffer means something else.
	buf := make([]byte, unix.PathMax+1)
	n, err := unix.Readlinkat(l.src, name, buf)
	switch {
	case err == unix.EINVAL: // no longer a symlink
		return errChanged
	case err != nil:
		return &os.PathError{Op: "readlink", Path: c.where(name), Err: err}
	case n == len(buf):
		return &os.PathError{Op: "readlink", Path: c.where(name), Err: unix.ENAMETOOLONG}
	}
	if err := unix.Symlinkat(string(buf[:n]), l.dst, name); err != nil {
		return &os.PathError{Op: "symlink", Path: c.where(name) + " (copy)", Err: err}
	}
	a := attrsOf(st)
	return c.setLinkAttrs(l.src, l.dst, name, &a, true)
}

func (c *copier) copyFIFO(l *copyLevel, name string, st *unix.Statx_t) error {
	if err := unix.Mkfifoat(l.dst, name, 0o600); err != nil {
		return &os.PathError{Op: "mkfifo", Path: c.where(name) + " (copy)", Err: err}
	}
	a := attrsOf(st)
	return c.setLinkAttrs(l.src, l.dst, name, &a, false)
}

// xattrs reads and writes the extended attributes of one entry.
type xattrs interface {
	list(dest []byte) (int, error)
	get(name string, dest []byte) (int, error)
	set(name string, value []byte) error
}

type fdXattrs struct{ fd int }

func (x fdXattrs) list(dest []byte) (int, error) { return unix.Flistxattr(x.fd, dest) }
func (x fdXattrs) get(name string, dest []byte) (int, error) {
	return unix.Fgetxattr(x.fd, name, dest)
}
func (x fdXattrs) set(name string, value []byte) error { return unix.Fsetxattr(x.fd, name, value, 0) }

// pathXattrs reaches an entry that cannot be opened through its open
// directory's /proc/self/fd link, so only the last component is looked up,
// and the l* calls do not follow it.
type pathXattrs string

func procPath(dir int, name string) pathXattrs {
	return pathXattrs("/proc/self/fd/" + strconv.Itoa(dir) + "/" + name)
}

func (x pathXattrs) list(dest []byte) (int, error) { return unix.Llistxattr(string(x), dest) }
func (x pathXattrs) get(name string, dest []byte) (int, error) {
	return unix.Lgetxattr(string(x), name, dest)
}
func (x pathXattrs) set(name string, value []byte) error {
	return unix.Lsetxattr(string(x), name, value, 0)
}

// xattrBufs are reused from entry to entry; a value is at most 64 KiB.
type xattrBufs struct{ names, value []byte }

// copyXattrs copies every extended attribute: user.*, and POSIX ACLs
// (system.posix_acl_access, system.posix_acl_default). security.* and
// trusted.* are copied where we may; an EPERM or ENOTSUP setting one of
// them (a label the policy assigns itself, no CAP_SYS_ADMIN in a user
// namespace) is logged and skipped, as cp -a does, since the copy is still
// the tenant's data.
func (c *copier) copyXattrs(src, dst xattrs, name string) error {
	b := &c.xattrBuf
	n, err := growing(&b.names, 1024, src.list)
	switch {
	case err == unix.ENOTSUP, err == unix.ENOENT && isProc(src):
		return nil // no xattrs here (or no /proc to reach a symlink's)
	case err != nil:
		return &os.PathError{Op: "listxattr", Path: c.where(name), Err: err}
	}
	for names := b.names[:n]; len(names) > 0; {
		i := bytes.IndexByte(names, 0)
		if i < 0 {
			i = len(names)
		}
		x := string(names[:i])
		names = names[min(i+1, len(names)):]
		if x == "" {
			continue
		}
		v, err := growing(&b.value, 256, func(d []byte) (int, error) { return src.get(x, d) })
		if err == unix.ENODATA {
			continue // removed since listed
		}
		if err != nil {
			return &os.PathError{Op: "getxattr " + x, Path: c.where(name), Err: err}
		}
		err = dst.set(x, b.value[:v])
		if err != nil && (strings.HasPrefix(x, "security.") || strings.HasPrefix(x, "trusted.")) &&
			(err == unix.EPERM || err == unix.ENOTSUP) {
			klog.V(2).InfoS("Copy leaves out an extended attribute it may not set", "path", c.where(name), "xattr", x, "err", err)
			continue
		}
		if err != nil {
			return &os.PathError{Op: "setxattr " + x, Path: c.where(name) + " (copy)", Err: err}
		}
	}
	return nil
}

func isProc(x xattrs) bool { _, ok := x.(pathXattrs); return ok }

// growing calls read with *buf, growing it while the kernel says ERANGE.
func growing(buf *[]byte, start int, read func([]byte) (int, error)) (int, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, start)
	}
	for {
		n, err := read(*buf)
		if err != unix.ERANGE {
			return n, err
		}
		size, err := read(nil)
		if err != nil {
			return 0, err
		}
		*buf = make([]byte, max(size, 2*len(*buf)))
	}
}

// errChanged says an entry became another kind of file between being
// listed and being copied; the copy leaves it out.
var errChanged = errors.New("replaced while being copied")

// linkSeen is the copy of a source inode with more than one link.
type linkSeen struct {
	rel  string // relative to the top of the copy
	left uint32 // links not met yet; forgotten at 0
}

// linkAgain makes name a hard link to the copy of its inode, if one was
// made already.
func (c *copier) linkAgain(l *copyLevel, name string, st *unix.Statx_t) (bool, error) {
	seen, ok := c.links[st.Ino]
	if !ok {
		return false, nil
	}
	dir, base := ".", seen.rel
	if i := strings.LastIndexByte(seen.rel, '/'); i >= 0 {
		dir, base = seen.rel[:i], seen.rel[i+1:]
	}
	fd, err := openBeneath(c.dstRoot, dir)
	if err != nil {
		return false, fmt.Errorf("open the directory of %s (copy) to link %s to it: %w", seen.rel, c.where(name), err)
	}
	defer unix.Close(fd)
	if err := unix.Linkat(fd, base, l.dst, name, 0); err != nil {
		return false, &os.PathError{Op: "link", Path: c.where(name) + " (copy)", Err: err}
	}
	if seen.left--; seen.left == 0 {
		delete(c.links, st.Ino)
	}
	c.res.Files++
	return true, nil
}

func (c *copier) remember(name string, st *unix.Statx_t) {
	c.links[st.Ino] = &linkSeen{rel: c.rel(name), left: st.Nlink - 1}
}

// openBeneath opens dir below root one component at a time, never
// following a symlink (a path may be longer than PATH_MAX in a deep tree).
func openBeneath(root int, dir string) (int, error) {
	fd, err := unix.Dup(root)
	if err != nil || dir == "." {
		return fd, err
	}
	for _, part := range strings.Split(dir, "/") {
		next, err := unix.Openat(fd, part, dirFlags, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}
