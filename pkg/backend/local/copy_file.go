package local

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// copyChunk is how much data one copy_file_range or read/write round moves
// before ctx is checked again.
const copyChunk = 8 << 20

// fileCopier moves one regular file's data at a time, remembering across
// files what the filesystem turned out unable to do.
type fileCopier struct {
	ctx     context.Context
	noClone bool   // FICLONE said the filesystem cannot share blocks
	noRange bool   // copy_file_range said it cannot copy between these files
	buf     []byte // for read/write, made on first use
	copied  bool   // some file's data was copied rather than shared
}

// errGone says an entry was removed between being listed and being copied.
var errGone = errors.New("removed while being copied")

func (c *copier) copyFile(l *copyLevel, name string, st *unix.Statx_t) error {
	// O_NONBLOCK: should a FIFO be swapped in, opening it must not hang.
	src, err := c.openSrc(l.src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
	switch err {
	case nil:
	case unix.ENOENT:
		return errGone
	case unix.ELOOP:
		return errChanged
	default:
		return &os.PathError{Op: "open", Path: c.where(name), Err: err}
	}
	defer unix.Close(src)
	// What was opened is what is copied, should name have been renamed over
	// since the statx (the usual way of writing a file whole).
	if err := statxFD(src, st); err != nil {
		return &os.PathError{Op: "statx", Path: c.where(name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || !c.sameMount(st) {
		return errChanged
	}
	dst, err := unix.Openat(l.dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: c.where(name) + " (copy)", Err: err}
	}
	defer unix.Close(dst)
	if st.Size > 0 {
		if err := c.file.data(src, dst, int64(st.Size)); err != nil {
			return fmt.Errorf("copy the data of %s: %w", c.where(name), err)
		}
	}
	a := attrsOf(st)
	if err := c.setAttrs(src, dst, &a, name); err != nil {
		return err
	}
	c.res.Bytes += int64(st.Size)
	return nil
}

// data gives dst the first size bytes of src: shared where the filesystem
// can (XFS with reflink, btrfs: constant time in the size), else copied
// without filling holes.
func (f *fileCopier) data(src, dst int, size int64) error {
	if !f.noClone {
		switch err := unix.IoctlFileClone(dst, src); err {
		case nil:
			return nil
		case unix.EOPNOTSUPP, unix.ENOTTY, unix.ENOSYS, unix.EXDEV:
			// The filesystem cannot (ext4, tmpfs), or src and dst are on
			// two: no file of this copy will do better.
			f.noClone = true
		case unix.EINVAL:
			// This file cannot (a swap file, DAX, ...); the next may.
		default:
			return err
		}
	}
	f.copied = true
	return f.sparse(src, dst, size)
}

// sparse copies the data segments of src that SEEK_DATA/SEEK_HOLE report,
// so holes stay holes, and sets the size, which a trailing hole leaves short.
func (f *fileCopier) sparse(src, dst int, size int64) error {
	var off int64
	for off < size {
		data, err := unix.Seek(src, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // nothing but a hole up to the end
		}
		hole := size
		if err == nil {
			if h, err := unix.Seek(src, data, unix.SEEK_HOLE); err == nil {
				hole = min(h, size)
			}
		} else {
			data = off // no SEEK_DATA here: all of it is data
		}
		if data >= size {
			break
		}
		n, err := f.segment(src, dst, data, hole-data)
		if err != nil {
			return err
		}
		off = data + n
		if n < hole-data {
			break // the file shrank while being copied
		}
	}
	if off < size {
		if err := unix.Ftruncate(dst, size); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
	}
	return nil
}

// segment copies n bytes at off, in chunks between which ctx is checked,
// with copy_file_range (in the kernel, and shared on filesystems that can)
// or else read and write. It returns how much it copied, short at EOF.
func (f *fileCopier) segment(src, dst int, off, n int64) (int64, error) {
	var done int64
	for done < n {
		if err := f.ctx.Err(); err != nil {
			return done, err
		}
		chunk := int(min(n-done, copyChunk))
		var w int
		var err error
		if !f.noRange {
			roff, woff := off+done, off+done
			w, err = unix.CopyFileRange(src, &roff, dst, &woff, chunk, 0)
			switch err {
			case unix.EXDEV, unix.EINVAL, unix.EOPNOTSUPP, unix.ENOSYS:
				f.noRange = true
			}
		}
		if f.noRange {
			w, err = f.readWrite(src, dst, off+done, chunk)
		}
		if err != nil {
			return done, err
		}
		if w == 0 {
			return done, nil // EOF
		}
		done += int64(w)
	}
	return done, nil
}

func (f *fileCopier) readWrite(src, dst int, off int64, n int) (int, error) {
	if f.buf == nil {
		f.buf = make([]byte, 1<<20)
	}
	var done int
	for done < n {
		r, err := unix.Pread(src, f.buf[:min(n-done, len(f.buf))], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, fmt.Errorf("read: %w", err)
		}
		if r == 0 {
			break
		}
		for w := 0; w < r; {
			m, err := unix.Pwrite(dst, f.buf[w:r], off+int64(done+w))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return done, fmt.Errorf("write: %w", err)
			}
			w += m
		}
		done += r
	}
	return done, nil
}
