package nfs

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// plantStores puts, inside rel, the record directories of other stores
// (any case of .stowage) next to ordinary data, and a file of a similar name.
func plantStores(t *testing.T, srv testServer, rel string) []string {
	t.Helper()
	var records []string
	for _, d := range []string{".stowage", "a/.STOWAGE", "a/b/.Stowage"} {
		p := rel + "/" + d + "/pvc-1"
		srv.mustWrite(t, p, "record")
		records = append(records, p)
	}
	srv.mustWrite(t, rel+"/a/b/data", "x")
	srv.mustWrite(t, rel+"/a/b/c.stowage", "x")
	return records
}

func TestRemoveLeavesOtherStores(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	for _, op := range []string{"Scrub", "RemoveAll"} {
		t.Run(op, func(t *testing.T) {
			vol := base + "/" + op
			records := plantStores(t, srv, vol)
			var err error
			if op == "Scrub" {
				err = st.Scrub(ctx, vol)
			} else {
				err = st.RemoveAll(ctx, vol)
			}
			var left *backend.LeftError
			if !errors.Is(err, backend.ErrOtherStore) || !errors.As(err, &left) || left.Count != 3 {
				t.Fatalf("err = %v, want a LeftError of 3 wrapping ErrOtherStore", err)
			}
			if !strings.Contains(err.Error(), vol+"/a/.STOWAGE") {
				t.Errorf("error does not name what was left: %v", err)
			}
			for _, p := range records {
				if b, err := os.ReadFile(srv.local(p)); err != nil || string(b) != "record" {
					t.Errorf("record %s: %q, %v", p, b, err)
				}
			}
			for _, p := range []string{"/a/b/data", "/a/b/c.stowage"} {
				if srv.exists(vol + p) {
					t.Errorf("%s still there", p)
				}
			}
		})
	}
}

func TestReset(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	vol := base + "/vol"
	if err := os.Mkdir(srv.local(vol), 0o755); err != nil {
		t.Fatal(err)
	}
	// What a previous tenant leaves on the directory itself.
	if err := os.Chown(srv.local(vol), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(srv.local(vol), 0o777|os.ModeSetgid|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := st.(*store).Reset(ctx, vol, 0o750); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(srv.local(vol))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != os.ModeDir|0o750 {
		t.Errorf("mode %v, want drwxr-x---", fi.Mode())
	}
	if sys := fi.Sys().(*syscall.Stat_t); sys.Uid != 0 || sys.Gid != 0 {
		t.Errorf("owner %d:%d, want 0:0 (the client's AUTH_SYS identity)", sys.Uid, sys.Gid)
	}
	for _, dir := range []string{base + "/missing", base + "/vol/under-missing"} {
		if err := st.(*store).Reset(ctx, dir, 0o750); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Reset(%s) = %v, want ErrNotFound", dir, err)
		}
	}
}
