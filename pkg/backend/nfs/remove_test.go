package nfs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// plantVolume fills rel server-side the way a pod could: nested data, a
// read-only subtree, and symlinks that point out of the volume, to the
// filesystem root, to a sibling volume and to a file in the sibling.
func plantVolume(t *testing.T, srv testServer, rel, sibling string) {
	t.Helper()
	srv.mustWrite(t, rel+"/top.txt", "top")
	srv.mustWrite(t, rel+"/a/b/c/deep.txt", "deep")
	srv.mustWrite(t, rel+"/ro/file", "locked")
	if err := os.Chmod(srv.local(rel+"/ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	srv.mustSymlink(t, "/", rel+"/to-root")
	srv.mustSymlink(t, srv.local(sibling), rel+"/to-sibling-abs")
	srv.mustSymlink(t, "../"+lastElem(sibling), rel+"/to-sibling-rel")
	srv.mustSymlink(t, srv.local(sibling+"/keep.txt"), rel+"/a/to-sibling-file")
	srv.mustSymlink(t, "missing-target", rel+"/dangling")
}

func lastElem(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// checkSiblingIntact fails if anything outside the removed volume was touched.
func checkSiblingIntact(t *testing.T, srv testServer, sibling string) {
	t.Helper()
	if b, err := os.ReadFile(srv.local(sibling + "/keep.txt")); err != nil || string(b) != "keep" {
		t.Errorf("sibling volume damaged: keep.txt = %q, %v", b, err)
	}
	if b, err := os.ReadFile(srv.local(sibling + "/sub/keep.txt")); err != nil || string(b) != "keep" {
		t.Errorf("sibling volume damaged: sub/keep.txt = %q, %v", b, err)
	}
	for _, p := range []string{"/etc/passwd", "/tmp", "/usr/bin"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s is gone: %v", p, err)
		}
	}
}

func TestRemoveAll(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	sibling := base + "/sibling"
	srv.mustWrite(t, sibling+"/keep.txt", "keep")
	srv.mustWrite(t, sibling+"/sub/keep.txt", "keep")

	tests := []struct {
		name  string
		plant func(t *testing.T, rel string)
	}{
		{"empty dir", func(t *testing.T, rel string) {
			if err := os.Mkdir(srv.local(rel), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"tree with symlinks out of the volume", func(t *testing.T, rel string) { plantVolume(t, srv, rel, sibling) }},
		{"the volume itself is a symlink to the sibling", func(t *testing.T, rel string) {
			srv.mustSymlink(t, srv.local(sibling), rel)
		}},
		{"the volume is a plain file", func(t *testing.T, rel string) { srv.mustWrite(t, rel, "x") }},
		{"missing", func(t *testing.T, rel string) {}},
		{"parent missing", func(t *testing.T, rel string) {}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rel := fmt.Sprintf("%s/vol%d", base, i)
			if tc.name == "parent missing" {
				rel = base + "/no-parent/vol"
			}
			tc.plant(t, rel)
			if err := st.RemoveAll(ctx, rel); err != nil {
				t.Fatalf("RemoveAll: %v", err)
			}
			if srv.exists(rel) {
				t.Errorf("%s still exists", rel)
			}
			if err := st.RemoveAll(ctx, rel); err != nil {
				t.Errorf("second RemoveAll = %v, want nil (idempotent)", err)
			}
			checkSiblingIntact(t, srv, sibling)
		})
	}
}

func TestRemoveAllManyEntries(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	// Enough names, long enough, that listing takes several READDIRPLUS
	// replies, in several directories.
	for d := range 3 {
		for f := range 700 {
			srv.mustWrite(t, fmt.Sprintf("%s/vol/d%d/file-with-a-longish-name-%04d", base, d, f), "")
		}
	}
	if err := st.RemoveAll(ctx, base+"/vol"); err != nil {
		t.Fatalf("RemoveAll: %v", err)
	}
	if srv.exists(base + "/vol") {
		t.Errorf("vol still exists")
	}
}

func TestScrub(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	sibling := base + "/sibling"
	srv.mustWrite(t, sibling+"/keep.txt", "keep")
	srv.mustWrite(t, sibling+"/sub/keep.txt", "keep")
	vol := base + "/vol"
	plantVolume(t, srv, vol, sibling)
	if err := os.Chmod(srv.local(vol), 0o770|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}

	for round := 1; round <= 2; round++ { // the second round scrubs an empty dir
		if err := st.Scrub(ctx, vol); err != nil {
			t.Fatalf("Scrub round %d: %v", round, err)
		}
		fi, err := os.Stat(srv.local(vol))
		if err != nil || !fi.IsDir() {
			t.Fatalf("Scrub removed the volume directory itself: %v", err)
		}
		if fi.Mode().Perm() != 0o770 || fi.Mode()&os.ModeSetgid == 0 {
			t.Errorf("Scrub changed the volume's mode to %v", fi.Mode())
		}
		entries, err := os.ReadDir(srv.local(vol))
		if err != nil || len(entries) != 0 {
			t.Errorf("after Scrub the volume holds %d entries (%v)", len(entries), err)
		}
		checkSiblingIntact(t, srv, sibling)
	}

	srv.mustWrite(t, base+"/file", "x")
	srv.mustSymlink(t, srv.local(sibling), base+"/link")
	tests := []struct {
		dir      string
		notFound bool
	}{
		{"missing", true},
		{"file/under", true},
		{"file", false},
		{"link", false}, // refused: scrubbing through it would empty the sibling
	}
	for _, tc := range tests {
		err := st.Scrub(ctx, base+"/"+tc.dir)
		if err == nil || errors.Is(err, backend.ErrNotFound) != tc.notFound {
			t.Errorf("Scrub(%s) = %v, want an error (ErrNotFound: %v)", tc.dir, err, tc.notFound)
		}
	}
	checkSiblingIntact(t, srv, sibling)
}
