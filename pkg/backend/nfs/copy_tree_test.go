package nfs

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The source tree of TestCopyTreeKeepsEverything, and how its entries are
// compared with their copies.

var (
	copyAtime = time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)
	copyMtime = time.Date(2001, 9, 9, 1, 46, 40, 500000000, time.UTC)
)

// plantTree makes a tree of every kind of entry under dir (server side) and
// returns how many entries and file bytes a copy should count.
func plantTree(t *testing.T, dir string) (files, bytes int64) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(dir, rel) }
	for _, d := range []struct {
		rel  string
		mode os.FileMode
	}{{"private", 0o700}, {"public", 0o755}, {"tmp", 0o1777}, {"a", 0o755}, {"a/b", 0o750}, {"a/b/c", 0o755}, {"empty-dir", 0o711}} {
		must(os.Mkdir(p(d.rel), 0o700))
		must(os.Chmod(p(d.rel), d.mode))
		files++
	}
	for _, rel := range []string{"empty", "a/empty", "a/b/c/empty"} {
		must(os.WriteFile(p(rel), nil, 0o644))
		files++
	}
	small := []byte("hello, snapshot\n")
	must(os.WriteFile(p("private/small"), small, 0o640))
	files++
	bytes += int64(len(small))

	// 20 MiB: 5 MiB of data, a 10 MiB hole, 5 MiB of data.
	f, err := os.Create(p("a/sparse"))
	must(err)
	data := make([]byte, 5<<20)
	_, _ = rand.Read(data)
	_, err = f.Write(data)
	must(err)
	_, _ = rand.Read(data)
	_, err = f.WriteAt(data, 15<<20)
	must(err)
	must(f.Close())
	files++
	bytes += 20 << 20

	// A file with a large odd size, so chunks and hole blocks do not align.
	odd := make([]byte, 3<<20+12345)
	_, _ = rand.Read(odd)
	must(os.WriteFile(p("public/odd"), odd, 0o755))
	files++
	bytes += int64(len(odd))

	must(os.WriteFile(p("setuid"), []byte("#!/bin/sh\n"), 0o755))
	files++
	bytes += 10

	// Hard links: three names of one file, two of another.
	must(os.WriteFile(p("linked"), []byte("one inode, three names\n"), 0o644))
	must(os.Link(p("linked"), p("a/b/linked-2")))
	must(os.Link(p("linked"), p("tmp/linked-3")))
	must(os.WriteFile(p("a/pair"), []byte("two names\n"), 0o600))
	must(os.Link(p("a/pair"), p("public/pair-2")))
	files += 5
	bytes += int64(len("one inode, three names\n") + len("two names\n"))

	must(os.Symlink("/etc/passwd", p("passwd-link")))
	must(os.Symlink("../../x", p("a/b/up-link")))
	must(os.Symlink("c/empty", p("a/b/down-link")))
	files += 3

	// Not copied: a FIFO, and Stowage's reserved directories.
	must(unix.Mkfifo(p("fifo"), 0o644))
	must(os.MkdirAll(p("a/.stowage/records"), 0o700))
	must(os.WriteFile(p("a/.stowage/records/r"), []byte("{}"), 0o600))
	must(os.Mkdir(p(".stowage-snapshots"), 0o700))

	// Owner and times last, deepest first, so that directories keep them.
	var all []string
	must(filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		all = append(all, path)
		return err
	}))
	for i := len(all) - 1; i >= 0; i-- {
		must(os.Lchown(all[i], 1234, 5678))
		mt := copyMtime.Add(time.Duration(i) * time.Second)
		ts := []unix.Timespec{unix.NsecToTimespec(copyAtime.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, all[i], ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	must(os.Chmod(p("setuid"), 0o4755)) // after chown, which clears it
	return files, bytes
}

// entryState is what a copy must keep of one entry.
type entryState struct {
	mode         os.FileMode
	uid, gid     uint32
	atime, mtime int64
	size         int64
	ino          uint64
	link         string
}

func stateOf(t *testing.T, path string) entryState {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	s := entryState{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, atime: st.Atim.Nano(), mtime: st.Mtim.Nano(), ino: st.Ino}
	if fi.Mode().IsRegular() {
		s.size = fi.Size()
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if s.link, err = os.Readlink(path); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// snapshotStates records every entry of a tree except what a copy skips.
func snapshotStates(t *testing.T, dir string) map[string]entryState {
	t.Helper()
	states := map[string]entryState{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && isReservedDir(e.Name()) {
			return filepath.SkipDir
		}
		if e.Type()&os.ModeNamedPipe != 0 {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		states[rel] = stateOf(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return states
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
