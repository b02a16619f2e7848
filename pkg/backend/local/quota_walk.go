package local

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/stowage-csi/stowage/pkg/quota"
)

// WalkUsage measures dir by walking it: the bytes of disk blocks its files
// hold (sparse files count what they use, hard links once) and its inode
// count. It is the fallback for filesystems without project quotas, and
// costs time in proportion to the number of files.
func WalkUsage(ctx context.Context, s *Store, dir string) (int64, int64, error) {
	sub, err := s.root.OpenRoot(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("measure %s under %s: %w", dir, s.base, wrap(err))
	}
	defer sub.Close()
	var bytes, inodes int64
	seen := map[uint64]bool{}
	err = fs.WalkDir(sub.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := sub.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			inodes++
			bytes += fi.Size()
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		inodes++
		bytes += int64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measure %s under %s: %w", dir, s.base, wrap(err))
	}
	return bytes, inodes, nil
}

// tagContents puts everything already inside dir into project id.
// Symlinks, devices, FIFOs and sockets are left out: they cannot be opened
// for the ioctl without following or blocking, and hold no data blocks.
func tagContents(s *Store, dir string, id uint32) error {
	sub, err := s.root.OpenRoot(dir)
	if err != nil {
		return wrap(err)
	}
	defer sub.Close()
	return fs.WalkDir(sub.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." || !(d.IsDir() || d.Type().IsRegular()) {
			return nil
		}
		// O_NONBLOCK: if a pod swaps the file for a FIFO after the listing,
		// opening it must not hang the node plugin.
		f, err := sub.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		return quota.SetProjectID(f, id)
	})
}
