package local

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopMount makes a sparse image of size bytes, formats it with mkfs (the
// image path appended) and mounts it through a loop device until the test
// ends. It skips where that cannot be done: not root, a tool missing, no
// loop devices.
func loopMount(tb testing.TB, size int64, mkfs ...string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to make loop devices and mount filesystems")
	}
	for _, tool := range []string{mkfs[0], "losetup", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not installed: %v", tool, err)
		}
	}
	dir := tb.TempDir()
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(size)
		f.Close()
	}
	if err != nil {
		tb.Fatal(err)
	}
	if out, err := exec.Command(mkfs[0], append(mkfs[1:], img)...).CombinedOutput(); err != nil {
		tb.Skipf("%s: %v: %s", strings.Join(mkfs, " "), err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		tb.Skipf("no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	tb.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	if out, err := exec.Command("mount", dev, mnt).CombinedOutput(); err != nil {
		tb.Skipf("mount %s: %v: %s", dev, err, out)
	}
	tb.Cleanup(func() {
		if exec.Command("umount", mnt).Run() != nil {
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

var xfsReflink = []string{"mkfs.xfs", "-q", "-f", "-m", "reflink=1"}

// fillFile writes size bytes that differ from MiB to MiB.
func fillFile(tb testing.TB, p string, size int64) {
	tb.Helper()
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	block := bytes.Repeat([]byte("stowage!"), 1<<17)
	for off := int64(0); off < size; off += int64(len(block)) {
		copy(block, []byte(time.Duration(off).String()))
		if _, err := f.WriteAt(block[:min(int64(len(block)), size-off)], off); err != nil {
			tb.Fatal(err)
		}
	}
}

func freeBytes(tb testing.TB, p string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		tb.Fatal(err)
	}
	return int64(st.Bfree) * st.Bsize
}

func TestCopyTreeReflinksOnXFS(t *testing.T) {
	const size = 1 << 30
	base := filepath.Join(loopMount(t, 3<<30, xfsReflink...), "base")
	src, dst := filepath.Join(base, "vol"), filepath.Join(base, "snap")
	must(t, os.MkdirAll(filepath.Join(src, "a"), 0o755))
	must(t, os.Mkdir(dst, 0o755))
	fillFile(t, filepath.Join(src, "big"), size)
	must(t, os.WriteFile(filepath.Join(src, "a", "small"), []byte("small"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "empty"), nil, 0o644))
	s, err := Open(base)
	must(t, err)
	defer s.Close()
	// FICLONE writes dirty pages back first: keep that out of the copy.
	f, err := os.Open(base)
	must(t, err)
	must(t, unix.Syncfs(int(f.Fd())))
	f.Close()

	free := freeBytes(t, base)
	start := time.Now()
	res, err := s.CopyTree(context.Background(), "vol", "snap")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %d entries, %d bytes, in %s", res.Files, res.Bytes, took)
	if !res.Reflinked {
		t.Error("Reflinked = false on XFS with reflink=1")
	}
	if res.Bytes != size+int64(len("small")) || res.Files != 4 {
		t.Errorf("copied %d entries, %d bytes; want 4, %d", res.Files, res.Bytes, size+len("small"))
	}
	if used := free - freeBytes(t, base); used > 64<<20 {
		t.Errorf("the copy of a 1 GiB file took %d MiB of the disk: its blocks are not shared", used>>20)
	}
	out, err := exec.Command("filefrag", "-v", filepath.Join(dst, "big")).CombinedOutput()
	if err != nil {
		t.Logf("filefrag: %v: %s", err, out)
	} else if !strings.Contains(string(out), "shared") {
		t.Errorf("filefrag shows no shared extent in the copy:\n%s", out)
	}
	for _, off := range []int64{0, size / 2, size - 1<<20} {
		a, b := make([]byte, 1<<20), make([]byte, 1<<20)
		fa, err := os.Open(filepath.Join(src, "big"))
		must(t, err)
		fb, err := os.Open(filepath.Join(dst, "big"))
		must(t, err)
		_, errA := fa.ReadAt(a, off)
		_, errB := fb.ReadAt(b, off)
		fa.Close()
		fb.Close()
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("copy differs at %d (%v, %v)", off, errA, errB)
		}
	}
}
