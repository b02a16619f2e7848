package local

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// The copy's stack of directories (see copy.go): at most maxOpenDirs
// levels hold descriptors; the others keep what reopens them.

func (c *copier) buffer() []byte {
	if n := len(c.free); n > 0 {
		b := c.free[n-1]
		c.free = c.free[:n-1]
		return b
	}
	return make([]byte, direntBufSize)
}

func (c *copier) closeLevel(l *copyLevel) {
	for _, fd := range []*int{&l.src, &l.dst} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if l.buf != nil {
		c.free = append(c.free, l.buf)
		l.buf, l.off, l.n = nil, 0, 0
	}
}

// rel is the path of an entry of the current directory relative to the
// top of the copy.
func (c *copier) rel(name string) string {
	parts := make([]string, 0, len(c.stack))
	for _, l := range c.stack[1:] {
		parts = append(parts, l.name)
	}
	return path.Join(append(parts, name)...)
}

// where names an entry of the current directory for messages and logs.
func (c *copier) where(name string) string { return path.Join(c.srcPath, c.rel(name)) }

func indexNUL(b []byte) int {
	for i, x := range b {
		if x == 0 {
			return i
		}
	}
	return -1
}

func (c *copier) push(l copyLevel) {
	if len(c.stack)-c.lowOpen >= maxOpenDirs {
		c.closeLevel(&c.stack[c.lowOpen])
		c.lowOpen++
	}
	l.buf = c.buffer()
	c.stack = append(c.stack, l)
	if descendHook != nil {
		descendHook()
	}
}

// finish is called when the deepest directory is read to its end: it gets
// the source's attributes, and the walk climbs to its parent.
func (c *copier) finish() error {
	i := len(c.stack) - 1
	l := &c.stack[i]
	if err := c.setAttrs(l.src, l.dst, &l.attrs, ""); err != nil {
		return err
	}
	if i > 0 && c.stack[i-1].src < 0 {
		if err := c.reopenParent(l, &c.stack[i-1], i-1); err != nil {
			return err
		}
	}
	c.closeLevel(l)
	c.stack = c.stack[:i]
	return nil
}

// reopenParent opens p, closed to stay within maxOpenDirs, as ".." of its
// child l on both sides, checks that each is the directory the walk came
// down through, and reads on where it left off.
func (c *copier) reopenParent(l, p *copyLevel, at int) error {
	src, err := reopenDotDot(l.src, c.dev, p.srcIno)
	if err != nil {
		return &os.PathError{Op: "reopen", Path: c.where(".."), Err: err}
	}
	dst, err := reopenDotDot(l.dst, c.dstDev, p.dstIno)
	if err != nil {
		unix.Close(src)
		return &os.PathError{Op: "reopen", Path: c.where("..") + " (copy)", Err: err}
	}
	if _, err := unix.Seek(src, p.cookie, 0); err != nil {
		unix.Close(src)
		unix.Close(dst)
		return &os.PathError{Op: "seek", Path: c.where(".."), Err: err}
	}
	p.src, p.dst, p.buf, p.off, p.n = src, dst, c.buffer(), 0, 0
	c.lowOpen = at
	return nil
}

func reopenDotDot(child int, dev, ino uint64) (int, error) {
	fd, err := unix.Openat(child, "..", dirFlags, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Statx_t
	if err := statxFD(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if devOf(&st) != dev || st.Ino != ino {
		unix.Close(fd)
		return -1, errors.New("the directory was moved while it was being copied; retry")
	}
	return fd, nil
}

func statxFD(fd int, st *unix.Statx_t) error {
	return unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, st)
}

func devOf(st *unix.Statx_t) uint64 { return unix.Mkdev(st.Dev_major, st.Dev_minor) }

func mntOf(st *unix.Statx_t) uint64 {
	if st.Mask&unix.STATX_MNT_ID != 0 {
		return st.Mnt_id
	}
	return 0
}
