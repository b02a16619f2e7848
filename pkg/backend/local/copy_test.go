package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

func TestCopyTreeKeepsEverything(t *testing.T) {
	s, base := openStore(t)
	src, dst := filepath.Join(base, "vol"), filepath.Join(base, "snap")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(dst, 0o700))
	leftOut, xattrs := buildTree(t, src)
	want := treeOf(t, src)
	setTimes(t, src) // as they were before treeOf read the directories and symlinks

	res, err := s.CopyTree(context.Background(), "vol", "snap")
	if err != nil {
		t.Fatal(err)
	}
	got := treeOf(t, dst)
	for _, p := range leftOut {
		if _, ok := got[p]; ok {
			t.Errorf("%s was copied; it should have been left out", p)
		}
		delete(want, p)
	}
	if xattrs && len(want["owned"].xattrs) == 0 {
		t.Fatal("the source lost its xattrs: the test is broken")
	}
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s missing from the copy", p)
		} else if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s differs:\n got %+v\nwant %+v", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s in the copy, not in the source", p)
		}
	}

	// Hard links are links again, to one inode of the copy.
	deep := strings.Repeat("x/", maxOpenDirs+4)
	var first syscall.Stat_t
	must(t, syscall.Lstat(filepath.Join(dst, "hl1"), &first))
	for _, l := range []string{"a/hl2", "a/b/hl3", deep + "hl4"} {
		var st syscall.Stat_t
		must(t, syscall.Lstat(filepath.Join(dst, l), &st))
		if st.Ino != first.Ino || st.Nlink != 4 {
			t.Errorf("%s: inode %d with %d links, want inode %d (hl1's copy) with 4", l, st.Ino, st.Nlink, first.Ino)
		}
	}
	// Holes stay holes.
	var sp syscall.Stat_t
	must(t, syscall.Stat(filepath.Join(dst, "sparse"), &sp))
	if used := sp.Blocks * 512; used > 1<<20 {
		t.Errorf("the copy of a %d MiB file holding 8 KiB of data uses %d bytes: holes were filled", sparseSize>>20, used)
	}

	wantFiles := int64(len(want) - 1) // not the top
	if res.Files != wantFiles {
		t.Errorf("Files = %d, want %d", res.Files, wantFiles)
	}
	// hl1's four names share one set of bytes.
	wantBytes := int64(len("deep") + len("#!/bin/sh\n") + len("owned") + len("linked") + len("b") + len("a") + len("z") + sparseSize)
	if res.Bytes != wantBytes {
		t.Errorf("Bytes = %d, want %d", res.Bytes, wantBytes)
	}
	if res.Reflinked {
		var fsinfo unix.Statfs_t
		must(t, unix.Statfs(base, &fsinfo))
		if fsinfo.Type == unix.EXT4_SUPER_MAGIC || fsinfo.Type == unix.TMPFS_MAGIC {
			t.Errorf("Reflinked on a filesystem without reflinks (%#x)", fsinfo.Type)
		}
	}
	// Nothing outside the store was written through the symlinks.
	if _, err := os.Lstat(filepath.Join(base, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy wrote through ../../x: %v", err)
	}
}

func TestCopyTreeLeavesMountsOut(t *testing.T) {
	s, base := openStore(t)
	src, dst := filepath.Join(base, "vol"), filepath.Join(base, "snap")
	must(t, os.MkdirAll(filepath.Join(src, "a"), 0o755))
	must(t, os.Mkdir(dst, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "a", "mine"), []byte("mine"), 0o644))
	mountInside(t, filepath.Join(src, "a", "mnt"))
	other := filepath.Join(base, "other")
	must(t, os.Mkdir(other, 0o755))
	must(t, os.WriteFile(filepath.Join(other, "theirs"), nil, 0o644))
	// Same device: only the mount ID tells it apart.
	bindInside(t, other, filepath.Join(src, "bind"))
	deep := strings.Repeat("x/", 2*maxOpenDirs)
	mountInside(t, filepath.Join(src, deep, "mnt"))

	if _, err := s.CopyTree(context.Background(), "vol", "snap"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/mnt", "bind", deep + "mnt"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s, a mount inside the source, was copied: %v", p, err)
		}
	}
	for _, p := range []string{"a/mine", deep} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s not copied: %v", p, err)
		}
	}
}

func TestCopyTreeDeepWithFewDescriptors(t *testing.T) {
	const depth = 20_000
	s, base := openFastStore(t)
	src, dst := filepath.Join(base, "vol"), filepath.Join(base, "snap")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(dst, 0o755))
	// A file before and one after each level's subdirectory: whichever
	// order the directory lists them in, the walk must read on after
	// climbing back into a level it had closed.
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	for i := range depth {
		must(t, unix.Mknodat(fd, fmt.Sprintf("before%d", i), unix.S_IFREG|0o644, 0))
		must(t, unix.Mkdirat(fd, "d", 0o755))
		must(t, unix.Mknodat(fd, fmt.Sprintf("after%d", i), unix.S_IFREG|0o644, 0))
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		must(t, err)
		fd = next
	}
	unix.Close(fd)

	limitFDs(t, 64)
	before, most, calls := openFDs(t), 0, 0
	descendHook = func() {
		if calls++; calls%1000 == 0 {
			most = max(most, openFDs(t))
		}
	}
	t.Cleanup(func() { descendHook = nil })
	res, err := s.CopyTree(context.Background(), "vol", "snap")
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(3 * depth); res.Files != want {
		t.Errorf("Files = %d, want %d", res.Files, want)
	}
	// Two per open level, the copy's top kept for hard links, and one for
	// reading /proc/self/fd.
	if limit := before + 2*maxOpenDirs + 2; most > limit {
		t.Errorf("%d descriptors open during the copy, want at most %d", most, limit)
	}
	fd, err = unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer func() { unix.Close(fd) }()
	for i := range depth {
		for _, f := range []string{fmt.Sprintf("before%d", i), fmt.Sprintf("after%d", i)} {
			if err := unix.Faccessat(fd, f, unix.F_OK, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatalf("level %d of the copy lacks %s: %v", i, f, err)
			}
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		unix.Close(fd)
		fd = next
	}
}

func TestCopyTreeStopsWhenCancelled(t *testing.T) {
	s, base := openStore(t)
	src := filepath.Join(base, "vol")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(filepath.Join(base, "snap"), 0o755))
	for i := range 100 {
		must(t, os.WriteFile(filepath.Join(src, fmt.Sprint(i)), nil, 0o644))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.CopyTree(ctx, "vol", "snap")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(base, "snap")); len(ents) != 0 {
		t.Errorf("%d entries copied after the context was cancelled", len(ents))
	}
}

func TestCopyDataStopsWhenCancelledInsideAFile(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "big"), make([]byte, 3*copyChunk), 0o644))
	src, err := unix.Open(filepath.Join(dir, "big"), unix.O_RDONLY, 0)
	must(t, err)
	defer unix.Close(src)
	dst, err := unix.Open(filepath.Join(dir, "copy"), unix.O_WRONLY|unix.O_CREAT, 0o600)
	must(t, err)
	defer unix.Close(dst)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := fileCopier{ctx: ctx, noClone: true}
	if err := f.data(src, dst, 3*copyChunk); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestCopyTreeNoSpace(t *testing.T) {
	s, base := openStore(t)
	src, dst := filepath.Join(base, "vol"), filepath.Join(base, "snap")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(dst, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "big"), []byte(strings.Repeat("x", 4<<20)), 0o644))
	if err := unix.Mount("stowage-test", dst, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
	_, err := s.CopyTree(context.Background(), "vol", "snap")
	if !errors.Is(err, backend.ErrNoSpace) || !strings.Contains(err.Error(), "vol/big") {
		t.Fatalf("err = %v, want one wrapping ErrNoSpace that names vol/big", err)
	}
}
