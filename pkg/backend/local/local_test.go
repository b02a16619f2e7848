package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/storetest"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	base := filepath.Join(t.TempDir(), "base")
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, base
}

// fill makes dir hold files, nested directories and symlinks that point
// out of the store, at a file and at a directory.
func fill(t *testing.T, dir, outsideFile, outsideDir string) {
	t.Helper()
	for _, d := range []string{"a/b/c", "empty"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"top", "a/one", "a/b/two", "a/b/c/three"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"to-file": outsideFile, "a/to-dir": outsideDir, "a/b/c/dangling": "/nonexistent"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
}

func outside(t *testing.T) (file, dir string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "keep")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, dir
}

func checkOutside(t *testing.T, file, dir string) {
	t.Helper()
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Fatalf("a file outside the store was touched through a symlink: %q, %v", b, err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("a directory outside the store was touched through a symlink: %v", err)
	}
}

func TestScrubEmptiesAndKeepsTheDirectory(t *testing.T) {
	s, base := openStore(t)
	file, dir := outside(t)
	vol := filepath.Join(base, "ns", "pvc-1")
	fill(t, vol, file, dir)
	if err := s.Scrub(context.Background(), "ns/pvc-1"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(vol)
	if err != nil {
		t.Fatalf("the volume directory itself must stay: %v", err)
	}
	if len(entries) != 0 {
		t.Fatalf("scrub left %d entries, first %s", len(entries), entries[0].Name())
	}
	checkOutside(t, file, dir)
}

func TestRemoveAll(t *testing.T) {
	ctx := context.Background()
	s, base := openStore(t)
	file, dir := outside(t)
	fill(t, filepath.Join(base, "pvc-full"), file, dir)
	fill(t, filepath.Join(base, "nested", "pvc-full"), file, dir)
	if err := os.Mkdir(filepath.Join(base, "pvc-empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink where a volume directory should be is removed, not followed.
	if err := os.Symlink(dir, filepath.Join(base, "pvc-link")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"pvc-full", "nested/pvc-full", "pvc-empty", "pvc-link", "pvc-missing", "gone/pvc-missing"} {
		if err := s.RemoveAll(ctx, d); err != nil {
			t.Fatalf("RemoveAll(%s): %v", d, err)
		}
		if _, err := os.Lstat(filepath.Join(base, d)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("RemoveAll(%s) left it: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "nested")); err != nil {
		t.Fatalf("RemoveAll removed the parent: %v", err)
	}
	checkOutside(t, file, dir)
}

func TestRecords(t *testing.T) {
	ctx := context.Background()
	s, base := openStore(t)
	storetest.Records(t, ctx, s, "contract")
	if _, err := s.ReadRecord(ctx, "vol-1.json"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("reading a record before any exists: %v, want ErrNotFound", err)
	}
	if err := s.RemoveRecord(ctx, "vol-1.json"); err != nil {
		t.Fatalf("removing a missing record: %v", err)
	}
	long := `{"name":"` + strings.Repeat("x", 3000) + `"}`
	for _, data := range []string{`{"v":1}`, `{"v":2,"retained":true}`, long} {
		if err := s.WriteRecord(ctx, "vol-1.json", []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReadRecord(ctx, "vol-1.json")
		if err != nil || string(got) != data {
			t.Fatalf("read back %d bytes %v, want %d bytes", len(got), err, len(data))
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(base, recordsDir)); len(entries) != 1 {
		t.Fatalf(".stowage holds %d entries after replacing one record, want 1", len(entries))
	}
	if err := s.RemoveRecord(ctx, "vol-1.json"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadRecord(ctx, "vol-1.json"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("reading a removed record: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "..", "a/b", "../x"} {
		if err := s.WriteRecord(ctx, bad, []byte("{}")); err == nil {
			t.Errorf("WriteRecord(%q) was accepted", bad)
		}
	}
	if err := s.WriteRecord(ctx, "vol-2.json", []byte(strings.Repeat("x", 5000))); err == nil {
		t.Error("a record longer than a link can hold was accepted")
	}
}

// A .stowage removed while the store holds it open must not swallow the
// records written afterwards.
func TestRecordsDirRemovedBehindOurBack(t *testing.T) {
	ctx := context.Background()
	s, base := openStore(t)
	if err := s.WriteRecord(ctx, "vol-1.json", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(base, recordsDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadRecord(ctx, "vol-1.json"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("reading a record whose directory is gone: %v, want ErrNotFound", err)
	}
	if err := s.WriteRecord(ctx, "vol-2.json", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	target, err := os.Readlink(filepath.Join(base, recordsDir, "vol-2.json"))
	if err != nil || target != `{"v":2}` {
		t.Fatalf("the record written after .stowage was removed is not on disk: %q, %v", target, err)
	}
}

func TestCheckNoticesAReplacedBasePath(t *testing.T) {
	s, base := openStore(t)
	if err := s.Check(); err != nil {
		t.Fatalf("a fresh store: %v", err)
	}
	if err := os.Rename(base, base+".old"); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err == nil {
		t.Fatal("Check passed with the base path gone")
	}
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("Check with another directory at the base path: %v, want an error saying it was replaced", err)
	}
}

func TestMkdir(t *testing.T) {
	ctx := context.Background()
	s, base := openStore(t)
	for _, d := range []string{"pvc-1", "pvc-1", "ns/deep/pvc-2"} { // a retry is fine
		if err := s.Mkdir(ctx, d, 0o770); err != nil {
			t.Fatalf("Mkdir(%s): %v", d, err)
		}
		if fi, err := os.Stat(filepath.Join(base, d)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o770 {
			t.Fatalf("Mkdir(%s) made %v, %v; want a directory with mode 0770", d, fi, err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "pvc-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Mkdir(ctx, "pvc-file", 0o770); err == nil {
		t.Fatal("Mkdir over a file succeeded")
	}
}
