package local

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// posixACL encodes an ACL the way the kernel takes it in
// system.posix_acl_*: version 2, then (tag, perm, id) entries.
func posixACL(uid uint32) []byte {
	type entry struct {
		tag, perm uint16
		id        uint32
	}
	entries := []entry{
		{0x01, 7, 0xffffffff}, // ACL_USER_OBJ
		{0x02, 7, uid},        // ACL_USER
		{0x04, 5, 0xffffffff}, // ACL_GROUP_OBJ
		{0x10, 7, 0xffffffff}, // ACL_MASK
		{0x20, 5, 0xffffffff}, // ACL_OTHER
	}
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

func TestReset(t *testing.T) {
	s, base := openStore(t)
	vol := filepath.Join(base, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	// What a previous tenant leaves on the directory itself.
	if err := os.Chown(vol, 1234, 5678); err != nil {
		t.Skipf("chown needs root: %v", err)
	}
	if err := os.Chmod(vol, 0o777|os.ModeSetgid|os.ModeSticky); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
		if err := unix.Setxattr(vol, name, posixACL(1234), 0); err != nil {
			t.Logf("no POSIX ACLs here (%v); testing the rest", err)

			break
		}
	}
	if err := unix.Setxattr(vol, "user.tenant", []byte("x"), 0); err != nil {
		t.Logf("no user xattrs here (%v)", err)
	}

	if err := s.Reset(context.Background(), "vol", 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(vol)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.ModeDir | os.ModeSetgid | 0o750; fi.Mode() != want {
		t.Errorf("mode %v, want %v", fi.Mode(), want)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
		t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, os.Geteuid(), os.Getegid())
	}
	for _, name := range []string{"system.posix_acl_access", "system.posix_acl_default", "user.tenant"} {
		if _, err := unix.Getxattr(vol, name, make([]byte, 256)); err == nil {
			t.Errorf("%s is still set", name)
		} else if !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
			t.Errorf("getxattr %s: %v", name, err)
		}
	}

	// Never through a symlink, and a missing directory is ErrNotFound.
	target := t.TempDir()
	if err := os.Symlink(target, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(context.Background(), "link", 0o700); err == nil {
		t.Error("Reset through a symlink succeeded")
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() == 0o700 {
		t.Error("Reset changed the symlink's target")
	}
	if err := s.Reset(context.Background(), "missing", 0o700); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Reset(missing) = %v, want ErrNotFound", err)
	}
}
