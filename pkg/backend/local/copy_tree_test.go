package local

import (
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// node is what a copy must keep of one entry.
type node struct {
	mode         fs.FileMode
	uid, gid     uint32
	atime, mtime int64
	size         int64
	target       string            // of a symlink
	xattrs       map[string]string // of entries other than symlinks
	sum          [32]byte          // of a regular file's data
}

// treeOf describes every entry under root by its path relative to root
// ("." for root itself). Metadata is read before data, so reading a file
// to hash it cannot move the times being compared.
func treeOf(t *testing.T, root string) map[string]node {
	t.Helper()
	tree := map[string]node{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, atime: st.Atim.Nano(), mtime: st.Mtim.Nano()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			n.target, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			n.size = fi.Size()
			n.sum, err = sumOf(p)
			n.xattrs = xattrsOf(t, p)
		default:
			n.xattrs = xattrsOf(t, p)
		}
		rel, _ := filepath.Rel(root, p)
		tree[rel] = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func sumOf(p string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOATIME, 0)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	copy(sum[:], h.Sum(nil))
	return sum, err
}

func xattrsOf(t *testing.T, p string) map[string]string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	m := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 4096)
		vn, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		m[name] = string(v[:vn])
	}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	atime2001 = time.Date(2001, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	mtime2001 = time.Date(2001, 6, 7, 8, 9, 10, 123_456_789, time.UTC)
)

const sparseSize = 64 << 20

// buildTree fills vol with every kind of entry a copy must keep, and the
// ones it must leave out; it returns the paths of the ones left out.
func buildTree(t *testing.T, vol string) (leftOut []string, xattrs bool) {
	t.Helper()
	in := func(p string) string { return filepath.Join(vol, p) }
	deep := strings.Repeat("x/", maxOpenDirs+4)
	for _, d := range []string{"a/b/c", "private", "tmp", deep, ".stowage", "a/.Stowage-Snapshots"} {
		must(t, os.MkdirAll(in(d), 0o755))
	}
	for f, data := range map[string]string{"empty": "", "a/b/c/deep": "deep", "suid": "#!/bin/sh\n", "owned": "owned",
		"hl1": "linked", ".stowage/record": "r", "a/.Stowage-Snapshots/s": "s", deep + "sibling-before": "b"} {
		must(t, os.WriteFile(in(f), []byte(data), 0o644))
	}
	for _, l := range []string{"a/hl2", "a/b/hl3", deep + "hl4"} {
		must(t, os.Link(in("hl1"), in(l)))
	}
	// Written after hl4 so that, in directories listed in creation order,
	// it comes after the entries the walk descends through.
	must(t, os.WriteFile(in(deep+"sibling-after"), []byte("a"), 0o644))
	must(t, os.WriteFile(in(strings.Repeat("x/", 3)+"z-after"), []byte("z"), 0o644))

	f, err := os.Create(in("sparse"))
	must(t, err)
	_, err = f.WriteAt([]byte(strings.Repeat("d", 4096)), 0)
	must(t, err)
	_, err = f.WriteAt([]byte(strings.Repeat("m", 4096)), sparseSize/2)
	must(t, err)
	must(t, f.Truncate(sparseSize)) // ends in a hole
	must(t, f.Close())

	must(t, os.Symlink("/etc/passwd", in("passwd")))
	must(t, os.Symlink("../../x", in("a/b/up")))
	must(t, os.Symlink("/", in("a/root")))
	must(t, unix.Mkfifo(in("a/pipe"), 0o640))
	must(t, unix.Mknod(in("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))

	for _, p := range []string{"owned", "a/root", "a/pipe", "private", "."} {
		if err := os.Lchown(in(p), 1234, 5678); err != nil {
			t.Skipf("chown needs root: %v", err)
		}
	}
	for p, mode := range map[string]fs.FileMode{"private": 0o700, "tmp": 0o777 | fs.ModeSticky, "suid": 0o755 | fs.ModeSetuid, ".": 0o750} {
		must(t, os.Chmod(in(p), mode))
	}
	xattrs = unix.Setxattr(in("owned"), "user.x", []byte("y"), 0) == nil
	if xattrs {
		must(t, unix.Setxattr(in("a"), "user.dir", []byte("z"), 0))
		for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
			must(t, unix.Setxattr(in("a"), name, posixACL(1234), 0))
		}
	} else {
		t.Log("this filesystem refuses user xattrs: not checking them")
	}
	setTimes(t, vol)
	return []string{"null", ".stowage", ".stowage/record", "a/.Stowage-Snapshots", "a/.Stowage-Snapshots/s"}, xattrs
}

// setTimes gives everything under vol the times of 2001, deepest first, so
// that nothing made after moves them. Reading a directory or a symlink may
// move its access time: call it again after such a read.
func setTimes(t *testing.T, vol string) {
	var all []string
	must(t, filepath.WalkDir(vol, func(p string, _ fs.DirEntry, err error) error {
		all = append(all, p)
		return err
	}))
	sort.Sort(sort.Reverse(sort.StringSlice(all)))
	for _, p := range all {
		ts := []unix.Timespec{unix.NsecToTimespec(atime2001.UnixNano()), unix.NsecToTimespec(mtime2001.UnixNano())}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}
