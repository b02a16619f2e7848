package nfs

import (
	"errors"
	"os"
	"path"
	"strings"
	"syscall"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
)

func TestMkdir(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	srv.mustWrite(t, base+"/file", "x")
	srv.mustSymlink(t, "/", base+"/link-to-root")
	if err := os.Mkdir(srv.local(base+"/existing"), 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		dir      string
		perm     os.FileMode
		wantErr  string      // substring; "" means success
		wantMode os.FileMode // checked server-side on success
	}{
		{name: "single", dir: "vol", perm: 0o755, wantMode: 0o755},
		{name: "world-writable exactly, no umask", dir: "open", perm: 0o777, wantMode: 0o777},
		{name: "nested creates parents", dir: "a/b/c", perm: 0o750, wantMode: 0o750},
		{name: "existing dir is fine and keeps its mode", dir: "existing", perm: 0o777, wantMode: 0o700},
		{name: "a file in the way", dir: "file", perm: 0o755, wantErr: "exists and is a file"},
		{name: "under a file", dir: "file/sub", perm: 0o755, wantErr: "exists and is a file"},
		{name: "through a symlink is refused", dir: "link-to-root/tmp/escaped", perm: 0o755, wantErr: "symlink"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := path.Join(base, tc.dir)
			err := st.Mkdir(ctx, dir, tc.perm)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Mkdir(%s) = %v, want error containing %q", dir, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Mkdir(%s): %v", dir, err)
			}
			fi, err := os.Stat(srv.local(dir))
			if err != nil {
				t.Fatalf("server side: %v", err)
			}
			if !fi.IsDir() || fi.Mode().Perm() != tc.wantMode {
				t.Errorf("server side %s: mode %v, want dir %v", dir, fi.Mode(), tc.wantMode)
			}
			if err := st.Mkdir(ctx, dir, tc.perm); err != nil {
				t.Errorf("second Mkdir(%s) = %v, want nil (idempotent)", dir, err)
			}
		})
	}
	if _, err := os.Stat("/tmp/escaped"); err == nil {
		t.Errorf("Mkdir followed a symlink out of the share: /tmp/escaped exists")
	}
}

func TestInvalidPathsAreRefused(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	for _, dir := range []string{"", "/abs", "../up", "a/../../up", ".stowage", "a//b", "a/./b"} {
		if err := st.Mkdir(ctx, dir, 0o755); err == nil {
			t.Errorf("Mkdir(%q) = nil, want a validation error", dir)
		}
		if err := st.RemoveAll(ctx, dir); err == nil {
			t.Errorf("RemoveAll(%q) = nil, want a validation error", dir)
		}
		if err := st.Scrub(ctx, dir); err == nil {
			t.Errorf("Scrub(%q) = nil, want a validation error", dir)
		}
		if _, err := st.Exists(ctx, dir); err == nil {
			t.Errorf("Exists(%q) = nil error, want a validation error", dir)
		}
	}
}

func TestExists(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	if err := os.MkdirAll(srv.local(base+"/dir/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv.mustWrite(t, base+"/file", "x")
	srv.mustSymlink(t, "dir", base+"/link-to-dir")

	tests := []struct {
		dir  string
		want bool
	}{
		{"dir", true},
		{"dir/sub", true},
		{"missing", false},
		{"missing/deeper", false},
		{"file", false},
		{"file/under", false},
		{"link-to-dir", false},     // a symlink is not a directory here
		{"link-to-dir/sub", false}, // and is never followed
	}
	for _, tc := range tests {
		got, err := st.Exists(ctx, path.Join(base, tc.dir))
		if err != nil || got != tc.want {
			t.Errorf("Exists(%s) = %v, %v; want %v, nil", tc.dir, got, err, tc.want)
		}
	}
}

func TestRename(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	srv.mustWrite(t, base+"/vol/data", "payload")
	srv.mustWrite(t, base+"/other/data", "other")

	// Archive into a parent that does not exist yet.
	if err := st.Rename(ctx, base+"/vol", base+"/archive/2024/vol"); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	if srv.exists(base + "/vol") {
		t.Errorf("source still exists after Rename")
	}
	if b, err := os.ReadFile(srv.local(base + "/archive/2024/vol/data")); err != nil || string(b) != "payload" {
		t.Errorf("moved data = %q, %v; want payload", b, err)
	}
	// A retry after a lost reply: the source is gone, the target is there.
	if err := st.Rename(ctx, base+"/vol", base+"/archive/2024/vol"); err != nil {
		t.Errorf("repeated Rename = %v, want nil", err)
	}
	// Never replace an existing target.
	err := st.Rename(ctx, base+"/other", base+"/archive/2024/vol")
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("Rename onto an existing dir = %v, want os.ErrExist", err)
	}
	if b, _ := os.ReadFile(srv.local(base + "/archive/2024/vol/data")); string(b) != "payload" {
		t.Errorf("existing target was modified: %q", b)
	}
	err = st.Rename(ctx, base+"/missing", base+"/archive/missing")
	if !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Rename of a missing dir = %v, want ErrNotFound", err)
	}
	if err := st.Rename(ctx, base+"/other", base+"/other/inside"); err == nil {
		t.Errorf("Rename into itself = nil, want an error")
	}
}

func TestCapacity(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	total, avail, err := st.Capacity(testCtx(t))
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(srv.dir, &fs); err != nil {
		t.Fatal(err)
	}
	wantTotal := int64(fs.Blocks) * fs.Frsize
	wantAvail := int64(fs.Bavail) * fs.Frsize
	if total != wantTotal {
		t.Errorf("total = %d, want %d (statfs of %s)", total, wantTotal, srv.dir)
	}
	// Others write to the same filesystem meanwhile; allow 64 MiB of drift.
	if d := avail - wantAvail; avail <= 0 || d > 64<<20 || d < -64<<20 {
		t.Errorf("available = %d, want about %d", avail, wantAvail)
	}
	if avail > total {
		t.Errorf("available %d > total %d", avail, total)
	}
}

// MkdirMade tells a directory its MKDIR made from one that was there.
func TestMkdirMade(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t).(*store)
	ctx := testCtx(t)
	base := srv.base(t)
	for _, c := range []struct {
		dir  string
		want bool
	}{
		{base + "/new", true},
		{base + "/new", false},  // there already
		{base + "/a/b/c", true}, // parents made on the way
		{base + "/a/b", false},  // made as a parent just above
		{base + "/x/new", true}, // a fresh parent and a fresh leaf
	} {
		made, err := st.MkdirMade(ctx, c.dir, 0o750)
		if err != nil || made != c.want {
			t.Errorf("MkdirMade(%s) = %v, %v; want %v", c.dir, made, err, c.want)
		}
		if fi, err := os.Stat(srv.local(c.dir)); err != nil || !fi.IsDir() {
			t.Errorf("%s is not a directory on the server: %v", c.dir, err)
		}
	}
}
