package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// chain makes a chain of depth directories named d under dir, with
// mkdirat relative to an open descriptor (by path it would pass PATH_MAX),
// and calls at(fd, i) in each, if not nil.
func chain(t *testing.T, dir string, depth int, at func(fd, i int)) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range depth {
		if at != nil {
			at(fd, i)
		}
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatalf("mkdirat at depth %d: %v", i, err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("openat at depth %d: %v", i, err)
		}
		fd = next
	}
	if err := unix.Mknodat(fd, "bottom", unix.S_IFREG|0o644, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
}

// openFastStore is openStore on tmpfs where there is one: the big trees
// below take minutes to make and remove on a busy disk.
func openFastStore(t *testing.T) (*Store, string) {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return openStore(t)
	}
	base, err := os.MkdirTemp("/dev/shm", "stowage-test-")
	if err != nil {
		return openStore(t)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	s, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, base
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// limitFDs lowers RLIMIT_NOFILE for the rest of the test: a walk holding a
// descriptor per level fails with EMFILE at once.
func limitFDs(t *testing.T, n uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
}

func TestRemoveDeepTreeWithFewDescriptors(t *testing.T) {
	const depth = 100_000
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepDir=%v", keep), func(t *testing.T) {
			s, base := openFastStore(t)
			vol := filepath.Join(base, "vol")
			if err := os.Mkdir(vol, 0o755); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			chain(t, vol, depth, nil)
			t.Logf("made in %s", time.Since(start))
			start = time.Now()
			defer func() { t.Logf("removed in %s", time.Since(start)) }()

			limitFDs(t, 64)
			before, most, calls := openFDs(t), 0, 0
			descendHook = func() {
				if calls++; calls%1000 == 0 {
					most = max(most, openFDs(t))
				}
			}
			t.Cleanup(func() { descendHook = nil })
			var err error
			if keep {
				err = s.Scrub(context.Background(), "vol")
			} else {
				err = s.RemoveAll(context.Background(), "vol")
			}
			if err != nil {
				t.Fatal(err)
			}
			if calls != depth {
				t.Errorf("entered %d directories, want %d", calls, depth)
			}
			// The walk's own, one more for reading /proc/self/fd, and the
			// parent or a ".." being reopened.
			if limit := before + maxOpenDirs + 2; most > limit {
				t.Errorf("%d descriptors open during the walk, want at most %d", most, limit)
			}
			ents, err := os.ReadDir(vol)
			switch {
			case keep && (err != nil || len(ents) != 0):
				t.Errorf("after Scrub: %v entries, %v; want an empty directory", len(ents), err)
			case !keep && !errors.Is(err, os.ErrNotExist):
				t.Errorf("after RemoveAll: %v", err)
			}
		})
	}
}

func TestScrubWideDirectoryInBoundedMemory(t *testing.T) {
	const entries = 200_000
	s, base := openFastStore(t)
	vol := filepath.Join(base, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(vol, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		if err := unix.Mknodat(fd, fmt.Sprintf("file-with-a-longer-name-%07d", i), unix.S_IFREG|0o644, 0); err != nil {
			t.Fatal(err)
		}
	}
	unix.Close(fd)

	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := s.Scrub(context.Background(), "vol"); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	// Listing the names at once costs some 10 MiB here; a batch of
	// getdents, and no allocation per entry, well under 1.
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 1<<20 {
		t.Errorf("Scrub of %d entries allocated %d bytes, want under 1 MiB", entries, alloc)
	}
	if ents, err := os.ReadDir(vol); err != nil || len(ents) != 0 {
		t.Errorf("after Scrub: %d entries, %v", len(ents), err)
	}
}

// mountInside mounts a tmpfs at dir holding one file, unmounted at the end.
func mountInside(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("stowage-test", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	keep := filepath.Join(dir, "keep")
	if err := os.WriteFile(keep, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return keep
}

// bindInside bind-mounts src (on the same filesystem) at dir.
func bindInside(t *testing.T, src, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, dir, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind mount (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

func TestRemoveLeavesMountsInside(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepDir=%v", keep), func(t *testing.T) {
			s, base := openStore(t)
			vol := filepath.Join(base, "vol")
			fileOut, dirOut := outside(t)
			fill(t, vol, fileOut, dirOut)
			tmpfsKeep := mountInside(t, filepath.Join(vol, "a", "mnt"))
			// A bind mount of the same filesystem has the same device:
			// only its mount ID tells it apart.
			other := filepath.Join(base, "other")
			if err := os.MkdirAll(other, 0o755); err != nil {
				t.Fatal(err)
			}
			bindKeep := filepath.Join(other, "keep")
			if err := os.WriteFile(bindKeep, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			bindInside(t, other, filepath.Join(vol, "bind"))
			// Deeper than the walk keeps open, so the report climbs
			// through reopened directories.
			deep := filepath.Join(vol, strings.Repeat("x/", 3*maxOpenDirs))
			deepKeep := mountInside(t, filepath.Join(deep, "mnt"))

			var err error
			if keep {
				err = s.Scrub(context.Background(), "vol")
			} else {
				err = s.RemoveAll(context.Background(), "vol")
			}
			var left *backend.LeftError
			if !errors.Is(err, backend.ErrOtherFilesystem) || !errors.As(err, &left) {
				t.Fatalf("err = %v, want a LeftError wrapping ErrOtherFilesystem", err)
			}
			if left.Count != 3 {
				t.Errorf("Count = %d, want 3 (%v)", left.Count, err)
			}
			for _, p := range []string{"vol/a/mnt", "vol/bind", "vol/" + strings.Repeat("x/", 3*maxOpenDirs) + "mnt"} {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error does not name %s: %v", p, err)
				}
			}
			for _, f := range []string{tmpfsKeep, bindKeep, deepKeep} {
				if b, err := os.ReadFile(f); err != nil || string(b) != "keep" {
					t.Errorf("%s in a mount inside the volume: %q, %v", f, b, err)
				}
			}
			// Everything else is gone.
			for _, p := range []string{"top", "a/one", "a/b/c/three", "to-file", "empty"} {
				if _, err := os.Lstat(filepath.Join(vol, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still there: %v", p, err)
				}
			}
			checkOutside(t, fileOut, dirOut)
		})
	}
}

func TestRemoveLeavesOtherStores(t *testing.T) {
	s, base := openStore(t)
	vol := filepath.Join(base, "vol")
	var records []string
	for _, d := range []string{".stowage", "a/.STOWAGE", "a/b/.Stowage"} {
		p := filepath.Join(vol, d, "pvc-1")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(`{"record":true}`, p); err != nil {
			t.Fatal(err)
		}
		records = append(records, p)
	}
	// A file of that name is no store.
	if err := os.WriteFile(filepath.Join(vol, "a", "b", "c.stowage"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Scrub(context.Background(), "vol")
	var left *backend.LeftError
	if !errors.Is(err, backend.ErrOtherStore) || !errors.As(err, &left) || left.Count != 3 {
		t.Fatalf("err = %v, want a LeftError of 3 wrapping ErrOtherStore", err)
	}
	for _, p := range records {
		if _, err := os.Readlink(p); err != nil {
			t.Errorf("record %s: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(vol, "a", "b", "c.stowage")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("c.stowage still there: %v", err)
	}
}

func TestRemoveReportsWhatItCouldNotRemove(t *testing.T) {
	s, base := openStore(t)
	vol := filepath.Join(base, "vol")
	for i := range 8 {
		if err := os.MkdirAll(filepath.Join(vol, fmt.Sprintf("d%d", i), ".stowage"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	err := s.RemoveAll(context.Background(), "vol")
	var left *backend.LeftError
	if !errors.As(err, &left) {
		t.Fatalf("err = %v, want a LeftError", err)
	}
	if left.Count != 8 || len(left.Paths) != 5 {
		t.Errorf("Count %d, %d paths; want 8 and the first 5", left.Count, len(left.Paths))
	}
	msg := err.Error()
	if !strings.Contains(msg, "8 entries could not be removed") || !strings.Contains(msg, "vol/d") || !strings.Contains(msg, "/.stowage") {
		t.Errorf("message does not say what was left: %s", msg)
	}
}

func TestRemoveStopsWhenCancelled(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepDir=%v", keep), func(t *testing.T) {
			s, base := openStore(t)
			vol := filepath.Join(base, "vol")
			if err := os.Mkdir(vol, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 2 * ctxEvery {
				if err := os.WriteFile(filepath.Join(vol, fmt.Sprint(i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var err error
			if keep {
				err = s.Scrub(ctx, "vol")
			} else {
				err = s.RemoveAll(ctx, "vol")
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if ents, _ := os.ReadDir(vol); len(ents) < ctxEvery {
				t.Errorf("%d entries left, want the walk to stop within %d", len(ents), ctxEvery)
			}
		})
	}
}

func TestScrubMissingIsNotFound(t *testing.T) {
	s, base := openStore(t)
	if err := os.WriteFile(filepath.Join(base, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir      string
		notFound bool
	}{
		{"missing", true},
		{"no-parent/vol", true},
		{"file", false},
		{"link", false},
	} {
		err := s.Scrub(context.Background(), tc.dir)
		if err == nil || errors.Is(err, backend.ErrNotFound) != tc.notFound {
			t.Errorf("Scrub(%s) = %v, want an error (ErrNotFound: %v)", tc.dir, err, tc.notFound)
		}
	}
	// RemoveAll of what is not there is done.
	for _, dir := range []string{"missing", "no-parent/vol"} {
		if err := s.RemoveAll(context.Background(), dir); err != nil {
			t.Errorf("RemoveAll(%s) = %v", dir, err)
		}
	}
}
