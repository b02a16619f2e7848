package local

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// Copying a tree (snapshots, restores, clones) walks src the way removal
// does (remove.go), with the same guarantees against a tenant's tree:
//   - Every entry is handled relative to its open parent, never by a path,
//     and nothing is followed: symlinks are copied as links.
//   - Depth: an explicit stack with at most maxOpenDirs levels open (a
//     source and a copy descriptor each). A level closed on the way down
//     keeps its getdents cookie; on the way back up it is reopened as ".."
//     of its child, checked against the inode seen going down, and read on
//     from the cookie. Memory grows with depth only by a name per level.
//   - Width: directories are read in getdents batches of direntBufSize.
//   - Mounts: an entry on another device or mount than src is left out and
//     logged, as are directories named like the records (.stowage,
//     .stowage-snapshots) and dst itself should it be inside src.
//   - Time: ctx is checked before every entry and between chunks of a file.
//
// Each file's data is first shared with FICLONE (copy_file.go); attributes
// are copied after the data, a directory's once its children are done, so
// that its timestamps and read-only modes are the source's (copy_attrs.go).

var _ backend.Copier = (*Store)(nil)

// CopyTree implements backend.Copier.
func (s *Store) CopyTree(ctx context.Context, src, dst string) (backend.CopyResult, error) {
	c, err := s.newCopier(ctx, src, dst)
	if err != nil {
		return backend.CopyResult{}, fmt.Errorf("copy %s to %s under %s: %w", src, dst, s.base, wrap(err))
	}
	defer c.close()
	if err := c.run(); err != nil {
		return c.res, fmt.Errorf("copy %s to %s under %s: %w", src, dst, s.base, wrap(err))
	}
	c.res.Reflinked = !c.file.copied
	return c.res, nil
}

// copyLevel is one directory on the copy's stack: the source and its copy.
type copyLevel struct {
	name           string // in its parent; "" for the top
	srcIno, dstIno uint64
	src, dst       int // -1 while closed to stay within maxOpenDirs
	attrs          attrs

	buf    []byte // getdents batch of src; nil while closed
	off, n int
	cookie int64 // d_off of the last entry handled: where to read on after a reopen
}

type copier struct {
	ctx      context.Context
	srcPath  string // for messages
	dev, mnt uint64 // of src; mnt 0 if the kernel does not tell
	dstDev   uint64
	dstIno   uint64
	dstRoot  int // kept open for hard links, whose first copy may be anywhere
	stack    []copyLevel
	lowOpen  int
	free     [][]byte
	links    map[uint64]*linkSeen
	res      backend.CopyResult
	file     fileCopier
	xattrBuf xattrBufs
	noatime  int // unix.O_NOATIME until the kernel refuses it
}

func (s *Store) newCopier(ctx context.Context, src, dst string) (*copier, error) {
	srcFD, err := s.openDir(src)
	if err != nil {
		return nil, err
	}
	dstFD, err := s.openDir(dst)
	if err != nil {
		unix.Close(srcFD)
		return nil, err
	}
	c := &copier{ctx: ctx, srcPath: src, dstRoot: -1, links: map[uint64]*linkSeen{}, noatime: unix.O_NOATIME}
	c.file.ctx = ctx
	c.stack = append(c.stack, copyLevel{src: srcFD, dst: dstFD, buf: c.buffer()})
	top := &c.stack[0]
	var st unix.Statx_t
	if err := statxFD(srcFD, &st); err != nil {
		return nil, c.closeWith(&os.PathError{Op: "statx", Path: src, Err: err})
	}
	c.dev, c.mnt, top.srcIno, top.attrs = devOf(&st), mntOf(&st), st.Ino, attrsOf(&st)
	if err := statxFD(dstFD, &st); err != nil {
		return nil, c.closeWith(&os.PathError{Op: "statx", Path: dst, Err: err})
	}
	c.dstDev, c.dstIno, top.dstIno = devOf(&st), st.Ino, st.Ino
	if c.dstDev == c.dev && c.dstIno == top.srcIno {
		return nil, c.closeWith(fmt.Errorf("%s and %s are the same directory", src, dst))
	}
	if c.dstRoot, err = unix.Dup(dstFD); err != nil {
		return nil, c.closeWith(fmt.Errorf("dup %s: %w", dst, err))
	}
	return c, nil
}

func (c *copier) closeWith(err error) error {
	c.close()
	return err
}

func (c *copier) close() {
	for i := range c.stack {
		c.closeLevel(&c.stack[i])
	}
	if c.dstRoot >= 0 {
		unix.Close(c.dstRoot)
		c.dstRoot = -1
	}
}

func (c *copier) run() error {
	for len(c.stack) > 0 {
		l := &c.stack[len(c.stack)-1]
		if l.off >= l.n {
			n, err := unix.Getdents(l.src, l.buf)
			if err != nil {
				return &os.PathError{Op: "getdents", Path: c.where(""), Err: err}
			}
			if n == 0 {
				if err := c.finish(); err != nil {
					return err
				}
				continue
			}
			l.off, l.n = 0, n
			continue
		}
		// struct linux_dirent64: ino, off, reclen, type, NUL-terminated name.
		rec := l.buf[l.off:l.n]
		reclen := int(binary.NativeEndian.Uint16(rec[16:18]))
		l.off += reclen
		l.cookie = int64(binary.NativeEndian.Uint64(rec[8:16]))
		name := rec[19:reclen]
		if i := indexNUL(name); i >= 0 {
			name = name[:i]
		}
		if n := string(name); n == "." || n == ".." {
			continue
		}
		if err := c.ctx.Err(); err != nil {
			return fmt.Errorf("stopped after %d entries: %w", c.res.Files, err)
		}
		if err := c.entry(l, string(name)); err != nil {
			return err
		}
	}
	return nil
}

// leaveOut logs an entry that the copy does not make.
func (c *copier) leaveOut(name, reason string) {
	klog.InfoS("Copy leaves an entry out", "path", c.where(name), "reason", reason)
}

// entry copies one entry of l, or enters it if it is a directory.
func (c *copier) entry(l *copyLevel, name string) error {
	var st unix.Statx_t
	err := unix.Statx(l.src, name, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &st)
	if err == unix.ENOENT {
		return nil // removed since it was listed
	}
	if err != nil {
		return &os.PathError{Op: "statx", Path: c.where(name), Err: err}
	}
	if !c.sameMount(&st) {
		c.leaveOut(name, "another filesystem is mounted there")
		return nil
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return c.enter(l, name)
	}
	if st.Nlink > 1 {
		if done, err := c.linkAgain(l, name, &st); done || err != nil {
			return err
		}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		err = c.copyFile(l, name, &st)
	case unix.S_IFLNK:
		err = c.copySymlink(l, name, &st)
	case unix.S_IFIFO:
		err = c.copyFIFO(l, name, &st)
	default:
		c.leaveOut(name, "device nodes and sockets are not copied")
		return nil
	}
	if errors.Is(err, errGone) {
		return nil
	}
	if errors.Is(err, errChanged) {
		c.leaveOut(name, "it was replaced by another kind of file while being copied")
		return nil
	}
	if err != nil {
		return err
	}
	c.res.Files++
	if st.Nlink > 1 {
		c.remember(name, &st)
	}
	return nil
}

func (c *copier) sameMount(st *unix.Statx_t) bool {
	return devOf(st) == c.dev && (c.mnt == 0 || mntOf(st) == c.mnt)
}

// enter makes the copy of directory name and pushes both on the stack.
func (c *copier) enter(l *copyLevel, name string) error {
	if strings.EqualFold(name, recordsDir) || strings.EqualFold(name, backend.SnapshotsDir) {
		c.leaveOut(name, "it is named like a store's records")
		return nil
	}
	src, err := c.openSrc(l.src, name, dirFlags)
	switch err {
	case nil:
	case unix.ENOENT:
		return nil
	case unix.ENOTDIR, unix.ELOOP:
		c.leaveOut(name, "it was replaced by a file while being copied")
		return nil
	default:
		return &os.PathError{Op: "open", Path: c.where(name), Err: err}
	}
	var st unix.Statx_t
	if err := statxFD(src, &st); err != nil {
		unix.Close(src)
		return &os.PathError{Op: "statx", Path: c.where(name), Err: err}
	}
	if !c.sameMount(&st) {
		unix.Close(src)
		c.leaveOut(name, "another filesystem is mounted there")
		return nil
	}
	if devOf(&st) == c.dstDev && st.Ino == c.dstIno {
		unix.Close(src)
		c.leaveOut(name, "it is the copy's destination")
		return nil
	}
	// Private until finish gives it the source's mode.
	if err := unix.Mkdirat(l.dst, name, 0o700); err != nil {
		unix.Close(src)
		return &os.PathError{Op: "mkdir", Path: c.where(name) + " (copy)", Err: err}
	}
	dst, err := unix.Openat(l.dst, name, dirFlags, 0)
	var dstSt unix.Statx_t
	if err == nil {
		if err = statxFD(dst, &dstSt); err != nil {
			unix.Close(dst)
		}
	}
	if err != nil {
		unix.Close(src)
		return &os.PathError{Op: "open", Path: c.where(name) + " (copy)", Err: err}
	}
	c.res.Files++
	c.push(copyLevel{name: name, srcIno: st.Ino, dstIno: dstSt.Ino, src: src, dst: dst, attrs: attrsOf(&st)})
	return nil
}

// openSrc opens an entry of the source without touching its access time
// where the kernel lets us (it does for root, or the file's owner).
func (c *copier) openSrc(dir int, name string, flags int) (int, error) {
	fd, err := unix.Openat(dir, name, flags|c.noatime, 0)
	if err == unix.EPERM && c.noatime != 0 {
		c.noatime = 0
		fd, err = unix.Openat(dir, name, flags, 0)
	}
	return fd, err
}
