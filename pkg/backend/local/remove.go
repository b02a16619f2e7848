package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// Removing trees works on directory descriptors, like rm -rf does: each
// entry is removed relative to its open parent, so a symlink is unlinked
// and never followed, and nothing is resolved twice. os.Root.RemoveAll is
// as safe but re-opens every directory by name per entry, which made a
// Recycle scrub of 100,000 files 1.3–1.5× slower than rm -rf
// (docs/benchmarks.md).
//
// A volume's tree is made by its tenant, so the walk must survive any
// shape of it:
//   - Depth: the walk is a loop over an explicit stack, and at most
//     maxOpenDirs directories are open at once. A shallower directory whose
//     descriptor was closed is reopened through ".." of its child when the
//     walk climbs back, and its (device, inode) must match what was opened
//     on the way down, so a directory moved meanwhile stops the walk
//     instead of steering it elsewhere. Memory grows with depth only by a
//     name and an inode per level, as rm -rf's does.
//   - Width: a directory is read in getdents batches of direntBufSize
//     bytes (about a thousand names), removing as it goes, and names are
//     handed to the kernel straight from that buffer. A directory is read
//     again from its start until a whole pass removes nothing: removing
//     entries while reading may make a filesystem skip some.
//   - Mounts: a directory whose device or mount differs from the volume
//     directory's is neither entered nor removed (another filesystem, or a
//     bind mount, put inside the volume through the base path's
//     Bidirectional propagation), and neither is a directory named
//     .stowage in any case (another store's records). Both are reported
//     in a *backend.LeftError.
//   - Time: ctx is checked every ctxEvery entries.

const (
	maxOpenDirs   = 16
	direntBufSize = 32 << 10
	ctxEvery      = 256
	// maxBlocked bounds the set of directories known to keep something
	// (so that a re-read of their parent does not count them again); past
	// it the walk gives up.
	maxBlocked = 100_000
)

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// descendHook, when set by a test, is called after each directory the walk enters.
var descendHook func()

// removeTree removes dir and everything under it; with keepDir only what
// is inside. Without keepDir a missing dir is not an error; with it, it
// wraps backend.ErrNotFound.
func (s *Store) removeTree(ctx context.Context, dir string, keepDir bool) error {
	pfd := int(s.rootDir.Fd())
	if p := path.Dir(dir); p != "." {
		fd, err := s.openDir(p)
		if errors.Is(err, unix.ENOENT) && !keepDir {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		pfd = fd
	}
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
	fd, err := unix.Openat(pfd, name, dirFlags, 0)
	switch {
	case err == nil:
	case keepDir:
		return &os.PathError{Op: "open", Path: dir, Err: err}
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return ignoreMissing(unix.Unlinkat(pfd, name, 0))
	default:
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	w, err := newWalker(ctx, dir, fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	defer w.close()
	if err := w.run(); err != nil {
		return err
	}
	if w.left.Count > 0 {
		return &w.left
	}
	if keepDir {
		return nil
	}
	if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// openDir opens dir under the base path one component at a time, never
// following a symlink.
func (s *Store) openDir(dir string) (int, error) {
	fd := int(s.rootDir.Fd())
	owned := false
	for _, part := range splitDir(dir) {
		next, err := unix.Openat(fd, part, dirFlags, 0)
		if owned {
			unix.Close(fd)
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		fd, owned = next, true
	}
	if !owned {
		return unix.Dup(fd)
	}
	return fd, nil
}

// level is one directory on the walk's stack.
type level struct {
	name string // in its parent; for the top, the path relative to the base
	ino  uint64
	fd   int // -1 while closed to stay within maxOpenDirs

	buf    []byte // getdents batch; nil while closed
	off, n int    // unread part of buf

	// About the current pass over the directory:
	dirty   bool // something was removed, so read it all again
	skipped int  // entries left here, counted when the pass is the last
	blocked int  // subdirectories left because of what is inside them
}

type walker struct {
	ctx      context.Context
	dev      uint64 // of the volume directory
	mnt      uint64 // its mount ID; 0 if the kernel does not tell
	stack    []level
	lowOpen  int      // stack[lowOpen:] are open
	free     [][]byte // getdents buffers of closed levels
	blockedI map[uint64]struct{}
	left     backend.LeftError
	entries  int
}

func newWalker(ctx context.Context, dir string, fd int) (*walker, error) {
	dev, mnt, ino, err := identity(fd)
	if err != nil {
		return nil, &os.PathError{Op: "statx", Path: dir, Err: err}
	}
	w := &walker{ctx: ctx, dev: dev, mnt: mnt, blockedI: map[uint64]struct{}{}}
	w.stack = append(w.stack, level{name: dir, ino: ino, fd: fd, buf: w.buffer()})
	return w, nil
}

// identity is what tells a directory of the volume from a mount inside it.
func identity(fd int) (dev, mnt, ino uint64, err error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		return 0, 0, 0, err
	}
	dev = unix.Mkdev(stx.Dev_major, stx.Dev_minor)
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		mnt = stx.Mnt_id
	}
	return dev, mnt, stx.Ino, nil
}

func (w *walker) buffer() []byte {
	if n := len(w.free); n > 0 {
		b := w.free[n-1]
		w.free = w.free[:n-1]
		return b
	}
	return make([]byte, direntBufSize)
}

func (w *walker) closeLevel(l *level) {
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
	if l.buf != nil {
		w.free = append(w.free, l.buf)
		l.buf, l.off, l.n = nil, 0, 0
	}
}

func (w *walker) close() {
	for i := range w.stack {
		w.closeLevel(&w.stack[i])
	}
}

// where names an entry of the current directory for messages.
func (w *walker) where(name string) string {
	parts := make([]string, 0, len(w.stack)+1)
	for _, l := range w.stack {
		parts = append(parts, l.name)
	}
	return path.Join(append(parts, name)...)
}

func (w *walker) note(l *level, name []byte, reason error) {
	l.skipped++
	if len(w.left.Paths) < 5 || len(w.left.Reasons) < 3 {
		p := w.where(string(name))
		if pe, ok := reason.(*os.PathError); ok {
			pe.Path = p
		}
		w.left.Note(p, reason)
	}
}

func (w *walker) run() error {
	for len(w.stack) > 0 {
		l := &w.stack[len(w.stack)-1]
		if l.off >= l.n {
			n, err := unix.Getdents(l.fd, l.buf)
			if err != nil {
				return &os.PathError{Op: "getdents", Path: w.where(""), Err: err}
			}
			if n > 0 {
				l.off, l.n = 0, n
				continue
			}
			if l.dirty {
				if _, err := unix.Seek(l.fd, 0, 0); err != nil {
					return &os.PathError{Op: "seek", Path: w.where(""), Err: err}
				}
				l.dirty, l.skipped, l.blocked = false, 0, 0
				continue
			}
			if err := w.finish(); err != nil {
				return err
			}
			continue
		}
		// struct linux_dirent64: ino, off, reclen, type, NUL-terminated name.
		rec := l.buf[l.off:l.n]
		reclen := int(binary.NativeEndian.Uint16(rec[16:18]))
		l.off += reclen
		ino := binary.NativeEndian.Uint64(rec[0:8])
		typ := rec[18]
		name := rec[19:reclen]
		name = name[:bytes.IndexByte(name, 0)+1] // keep the NUL for the kernel
		if n := string(name); n == ".\x00" || n == "..\x00" {
			continue
		}
		if w.entries++; w.entries%ctxEvery == 0 {
			if err := w.ctx.Err(); err != nil {
				return fmt.Errorf("stopped after %d entries: %w", w.entries, err)
			}
		}
		if err := w.entry(l, name, typ, ino); err != nil {
			return err
		}
	}
	return nil
}

// entry removes one entry of l, or enters it if it is a directory; name
// ends in NUL.
func (w *walker) entry(l *level, name []byte, typ uint8, ino uint64) error {
	if typ != unix.DT_DIR {
		// Most entries are files: try that first, one system call each.
		switch err := unlinkat(l.fd, name, 0); err {
		case nil:
			l.dirty = true
			return nil
		case unix.ENOENT:
			return nil
		case unix.EISDIR:
		default:
			w.note(l, name[:len(name)-1], &os.PathError{Op: "unlink", Err: err})
			return nil
		}
	}
	bare := name[:len(name)-1]
	if len(bare) == len(recordsDir) && bytes.EqualFold(bare, []byte(recordsDir)) {
		w.note(l, bare, backend.ErrOtherStore)
		return nil
	}
	if _, ok := w.blockedI[ino]; ok {
		l.blocked++
		return nil
	}
	fd, err := openat(l.fd, name)
	switch err {
	case nil:
	case unix.ENOENT:
		return nil
	case unix.ENOTDIR, unix.ELOOP:
		// Swapped for a non-directory since it was listed.
		return w.entry(l, name, unix.DT_UNKNOWN, ino)
	default:
		w.note(l, bare, &os.PathError{Op: "open", Err: err})
		return nil
	}
	dev, mnt, ino, err := identity(fd)
	if err != nil {
		unix.Close(fd)
		w.note(l, bare, &os.PathError{Op: "statx", Err: err})
		return nil
	}
	if dev != w.dev || mnt != w.mnt {
		unix.Close(fd)
		w.note(l, bare, backend.ErrOtherFilesystem)
		return nil
	}
	w.push(string(bare), ino, fd)
	return nil
}

func (w *walker) push(name string, ino uint64, fd int) {
	if len(w.stack)-w.lowOpen >= maxOpenDirs {
		w.closeLevel(&w.stack[w.lowOpen])
		w.lowOpen++
	}
	w.stack = append(w.stack, level{name: name, ino: ino, fd: fd, buf: w.buffer()})
	if descendHook != nil {
		descendHook()
	}
}

// finish is called when a pass over the deepest directory removed nothing:
// it is empty but for what stays. It climbs to the parent and removes the
// directory there, or records it as blocked.
func (w *walker) finish() error {
	i := len(w.stack) - 1
	l := &w.stack[i]
	w.left.Count += l.skipped
	keeps := l.skipped+l.blocked > 0
	if i == 0 {
		// The caller removes the top, or keeps it.
		w.closeLevel(l)
		w.stack = w.stack[:0]
		return nil
	}
	p := &w.stack[i-1]
	if p.fd < 0 {
		if err := w.reopenParent(l, p, i-1); err != nil {
			return err
		}
	}
	name, ino := l.name, l.ino
	w.closeLevel(l)
	w.stack = w.stack[:i]
	if !keeps {
		err := unix.Unlinkat(p.fd, name, unix.AT_REMOVEDIR)
		if err == nil || err == unix.ENOENT {
			p.dirty = true
			return nil
		}
		// Refilled since its last pass, or the filesystem refuses.
		w.left.Count++
		w.note(p, []byte(name), &os.PathError{Op: "rmdir", Err: err})
		p.skipped-- // counted just now, and as blocked when seen again
	}
	p.blocked++
	if len(w.blockedI) >= maxBlocked {
		return fmt.Errorf("gave up after %d directories that keep something: %w", maxBlocked, &w.left)
	}
	w.blockedI[ino] = struct{}{}
	return nil
}

// reopenParent opens p, closed to stay within maxOpenDirs, as ".." of its
// child l, and checks that it is the directory the walk came down through.
func (w *walker) reopenParent(l, p *level, at int) error {
	fd, err := unix.Openat(l.fd, "..", dirFlags, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: w.where(".."), Err: err}
	}
	dev, mnt, ino, err := identity(fd)
	if err == nil && (dev != w.dev || mnt != w.mnt || ino != p.ino) {
		err = errors.New("the directory was moved while it was being removed; retry")
	}
	if err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "reopen", Path: w.where(".."), Err: err}
	}
	p.fd, p.buf = fd, w.buffer()
	// Read from the start: a new pass.
	p.off, p.n, p.dirty, p.skipped, p.blocked = 0, 0, false, 0, 0
	w.lowOpen = at
	return nil
}

// unlinkat and openat take the NUL-terminated name straight from the
// getdents buffer, so a directory of any size is walked without allocating.
func unlinkat(dirfd int, name []byte, flags int) error {
	_, _, e := unix.Syscall(unix.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(&name[0])), uintptr(flags))
	if e != 0 {
		return e
	}
	return nil
}

func openat(dirfd int, name []byte) (int, error) {
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&name[0])), dirFlags, 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
