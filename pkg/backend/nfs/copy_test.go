package nfs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// The tests build a source tree on the server's side of the export, copy
// it over NFS and compare both trees there, entry by entry.

func TestCopyTreeKeepsEverything(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	src, dst := base+"/src", base+"/dst"
	if err := os.Mkdir(srv.local(src), 0o700); err != nil {
		t.Fatal(err)
	}
	wantFiles, wantBytes := plantTree(t, srv.local(src))
	if err := os.Mkdir(srv.local(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	before := snapshotStates(t, srv.local(src))

	res, err := st.(backend.Copier).CopyTree(ctx, src, dst)
	if err != nil {
		t.Fatalf("CopyTree: %v", err)
	}
	if res.Files != wantFiles || res.Bytes != wantBytes || res.Reflinked {
		t.Errorf("CopyTree result = %+v, want %d files, %d bytes, not reflinked", res, wantFiles, wantBytes)
	}

	after := snapshotStates(t, srv.local(dst)) // before reading, which moves atimes
	if len(after) != len(before) {
		t.Errorf("copy has %d entries, source %d", len(after), len(before))
	}
	dstIno := map[uint64]uint64{} // source inode -> copy inode
	for rel, want := range before {
		got, ok := after[rel]
		if !ok {
			t.Errorf("%s: missing from the copy", rel)
			continue
		}
		if got.mode != want.mode || got.uid != want.uid || got.gid != want.gid || got.size != want.size || got.link != want.link {
			t.Errorf("%s: copy has mode %v owner %d:%d size %d link %q, source mode %v owner %d:%d size %d link %q",
				rel, got.mode, got.uid, got.gid, got.size, got.link, want.mode, want.uid, want.gid, want.size, want.link)
		}
		// A directory's atime is the one it had when the copy read it, which
		// listing it (here too) moves. NFS-Ganesha ignores times set on a
		// symlink (knfsd keeps them), so a link's are not checked either.
		checkAtime := want.mode.IsRegular()
		if want.mode&os.ModeSymlink == 0 && (got.mtime != want.mtime || checkAtime && got.atime != want.atime) {
			t.Errorf("%s: copy has atime %v mtime %v, source %v %v", rel,
				time.Unix(0, got.atime).UTC(), time.Unix(0, got.mtime).UTC(), time.Unix(0, want.atime).UTC(), time.Unix(0, want.mtime).UTC())
		}
		if prev, seen := dstIno[want.ino]; seen && prev != got.ino {
			t.Errorf("%s: a hard link in the source, a separate file (inode %d, not %d) in the copy", rel, got.ino, prev)
		}
		dstIno[want.ino] = got.ino
	}
	if n := len(dstIno); n != len(before)-3 { // three names are extra links
		t.Errorf("copy has %d distinct inodes, want %d", n, len(before)-3)
	}
	for rel, want := range before {
		if want.mode.IsRegular() {
			if fileSum(t, filepath.Join(srv.local(src), rel)) != fileSum(t, filepath.Join(srv.local(dst), rel)) {
				t.Errorf("%s: contents differ", rel)
			}
		}
	}
	root := stateOf(t, srv.local(dst))
	if wantRoot := stateOf(t, srv.local(src)); root.mode != wantRoot.mode || root.uid != 1234 || root.mtime != wantRoot.mtime {
		t.Errorf("dst itself: mode %v owner %d mtime %d, want the source's %v 1234 %d", root.mode, root.uid, root.mtime, wantRoot.mode, wantRoot.mtime)
	}
	var sparse unix.Stat_t
	if err := unix.Stat(filepath.Join(srv.local(dst), "a/sparse"), &sparse); err != nil {
		t.Fatal(err)
	}
	if used := sparse.Blocks * 512; used > 11<<20 {
		t.Errorf("the copy of a 20 MiB file with a 10 MiB hole uses %d bytes: the hole was filled", used)
	}
}

func TestCopyTreeDeep(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	depth := 2000 // STOWAGE_TEST_COPY_DEPTH=20000 for the deepest trees
	if d, err := strconv.Atoi(os.Getenv("STOWAGE_TEST_COPY_DEPTH")); err == nil && d > 0 {
		depth = d
	}
	src, dst := base+"/src", base+"/dst"
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(srv.local(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Server side, by descriptor: the full path is longer than PATH_MAX.
	fd, err := unix.Open(srv.local(src), unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < depth; i++ {
		if err := unix.Mkdirat(fd, "d", 0o755); err == nil {
			var next int
			if next, err = unix.Openat(fd, "d", unix.O_DIRECTORY|unix.O_RDONLY, 0); err == nil {
				unix.Close(fd)
				fd = next
			}
		}
		if err != nil {
			t.Fatalf("level %d: %v", i, err)
		}
	}
	leaf, err := unix.Openat(fd, "leaf", unix.O_CREAT|unix.O_WRONLY, 0o644)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = unix.Write(leaf, []byte("at the bottom"))
	unix.Close(leaf)

	res, err := st.(backend.Copier).CopyTree(ctx, src, dst)
	if err != nil {
		t.Fatalf("CopyTree of a tree %d levels deep: %v", depth, err)
	}
	if res.Files != int64(depth)+1 {
		t.Errorf("copied %d entries, want %d", res.Files, depth+1)
	}
	fd, err = unix.Open(srv.local(dst), unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < depth; i++ {
		next, err := unix.Openat(fd, "d", unix.O_DIRECTORY|unix.O_RDONLY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("the copy stops at level %d: %v", i, err)
		}
		fd = next
	}
	defer unix.Close(fd)
	leaf, err = unix.Openat(fd, "leaf", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("the copy has no leaf file: %v", err)
	}
	buf := make([]byte, 64)
	n, _ := unix.Read(leaf, buf)
	unix.Close(leaf)
	if string(buf[:n]) != "at the bottom" {
		t.Errorf("leaf holds %q", buf[:n])
	}
}

func TestCopyTreeCancelled(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	base := srv.base(t)
	src, dst := base+"/src", base+"/dst"
	const n = 3000
	for i := 0; i < n; i++ {
		srv.mustWrite(t, fmt.Sprintf("%s/d%02d/f%04d", src, i%20, i), "data")
	}
	if err := os.Mkdir(srv.local(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	done := make(chan error, 1)
	var res backend.CopyResult
	go func() {
		var err error
		res, err = st.(backend.Copier).CopyTree(ctx, src, dst)
		done <- err
	}()
	// Cancel as soon as the copy has begun to fill dst.
	for {
		if ents, _ := os.ReadDir(srv.local(dst)); len(ents) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CopyTree after cancel = %v (%+v), want context.Canceled", err, res)
	}
	if res.Files >= n {
		t.Errorf("the copy made all %d entries although it was cancelled", res.Files)
	}
	t.Logf("stopped after %d entries: %v", res.Files, err)
}

func TestCopyTreeNoSpace(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	st, err := Open(ctx, srv.server, "/small")
	if err != nil {
		t.Skipf("the server has no /small export (test/nfs/ganesha.sh makes one when it may mount tmpfs): %v", err)
	}
	defer st.Close()
	small := filepath.Join(filepath.Dir(srv.dir), "small")
	base := "copy-nospace-" + time.Now().Format("150405.000000000")
	t.Cleanup(func() { os.RemoveAll(filepath.Join(small, base)) })
	if err := os.MkdirAll(filepath.Join(small, base, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(small, base, "dst"), 0o755); err != nil {
		t.Fatal(err)
	}
	// 3 MiB of a 4 MiB share cannot be there twice.
	big := make([]byte, 3<<20)
	_, _ = rand.Read(big)
	if err := os.WriteFile(filepath.Join(small, base, "src", "big"), big, 0o644); err != nil {
		t.Skipf("cannot fill /small: %v", err)
	}
	_, err = st.(backend.Copier).CopyTree(ctx, base+"/src", base+"/dst")
	t.Logf("error: %v", err)
	if !errors.Is(err, backend.ErrNoSpace) || !strings.Contains(err.Error(), base+"/src/big") {
		t.Fatalf("CopyTree onto a full share = %v, want ErrNoSpace naming %s/src/big", err, base)
	}
}

func TestCopyTreeRejects(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t).(backend.Copier)
	ctx := testCtx(t)
	for _, c := range []struct{ src, dst string }{
		{"vol", "vol"}, {"vol", "vol/inner"}, {"vol/inner", "vol"}, {"../x", "y"}, {"x", ".stowage/records"},
	} {
		if _, err := st.CopyTree(ctx, c.src, c.dst); err == nil {
			t.Errorf("CopyTree(%q, %q) succeeded", c.src, c.dst)
		}
	}
}
