//go:build linux

package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/quota"
	"github.com/stowage-csi/stowage/pkg/quota/quotatest"
)

const mib = 1 << 20

// quotaStore mounts a fresh filesystem of kind and opens a Store on a base
// path below its root, as a node's /var/lib/stowage/local would be.
func quotaStore(t *testing.T, kind quotatest.Kind) *Store {
	t.Helper()
	base := filepath.Join(quotatest.Mount(t, kind), "stowage", "local")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writeFile writes n bytes and syncs, returning the first error, so quota
// failures surface whether the kernel reports them at write or at sync.
func writeFile(p string, n int) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<16)
	for i := range buf {
		buf[i] = byte(i) | 1 // not zeros: nothing may turn them into holes
	}
	for n > 0 {
		k := min(n, len(buf))
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeAsPod is writeFile on an OS thread without CAP_SYS_RESOURCE, as in
// an ordinary pod: the VFS quota code behind ext4 lets that capability
// exceed hard limits, so a root test process would never hit one.
func writeAsPod(p string, n int) error {
	return asPod(func() error { return writeFile(p, n) })
}

// asPod runs fn on an OS thread without CAP_SYS_RESOURCE.
func asPod(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with the goroutine, so its reduced
		// capabilities cannot leak to other goroutines.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			done <- fmt.Errorf("capget: %w", err)
			return
		}
		caps[0].Effective &^= 1 << unix.CAP_SYS_RESOURCE
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			done <- fmt.Errorf("capset: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}

func statfsTotal(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize
}

func TestQuotaEnforced(t *testing.T) {
	tests := []struct {
		kind quotatest.Kind
		// XFS reports a full project quota as ENOSPC, the VFS quota code
		// (ext4) as EDQUOT; backend.ErrNoSpace covers both.
		errno syscall.Errno
	}{
		{kind: quotatest.XFSPrjQuota, errno: syscall.ENOSPC},
		{kind: quotatest.Ext4PrjQuota, errno: syscall.EDQUOT},
	}
	for _, tt := range tests {
		t.Run(tt.kind.Name, func(t *testing.T) {
			ctx := context.Background()
			s := quotaStore(t, tt.kind)
			q, err := NewQuota(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Mkdir(ctx, "pvc-1", 0o777); err != nil {
				t.Fatal(err)
			}
			if err := q.SetQuota(ctx, "pvc-1", 10*mib); err != nil {
				t.Fatal(err)
			}
			vol := s.Path("pvc-1")
			if err := writeAsPod(filepath.Join(vol, "a"), 9*mib); err != nil {
				t.Fatalf("9 MiB into a 10 MiB volume: %v", err)
			}
			bytes, inodes, err := q.Usage(ctx, "pvc-1")
			if err != nil {
				t.Fatal(err)
			}
			if bytes < 9*mib || bytes > 9*mib+256<<10 || inodes != 2 {
				t.Errorf("Usage = %d bytes %d inodes, want 9 MiB (+metadata) and 2 inodes", bytes, inodes)
			}
			if got := statfsTotal(t, vol); got != 10*mib {
				t.Errorf("statfs size of the volume = %d, want the quota %d", got, 10*mib)
			}

			err = writeAsPod(filepath.Join(vol, "b"), 2*mib)
			if !errors.Is(err, tt.errno) {
				t.Fatalf("writing past the quota: %v, want %v", err, tt.errno)
			}
			if !errors.Is(wrap(err), backend.ErrNoSpace) {
				t.Errorf("wrap(%v) does not map to backend.ErrNoSpace", err)
			}

			if err := q.SetQuota(ctx, "pvc-1", 0); err != nil {
				t.Fatal(err)
			}
			if err := writeAsPod(filepath.Join(vol, "b"), 4*mib); err != nil {
				t.Fatalf("write after removing the quota: %v", err)
			}
			if got := statfsTotal(t, vol); got <= 10*mib {
				t.Errorf("statfs size after removing the quota = %d, want the filesystem's", got)
			}
			if bytes, _, _ := q.Usage(ctx, "pvc-1"); bytes < 13*mib {
				t.Errorf("Usage after more writes = %d, want at least 13 MiB", bytes)
			}
		})
	}
}

// TestQuotaProjects covers how directories get their projects: each volume
// its own, a volume under a PROJINHERIT parent not the parent's, and data
// already in a volume charged once the quota is set.
func TestQuotaProjects(t *testing.T) {
	for _, kind := range []quotatest.Kind{quotatest.XFSPrjQuota, quotatest.Ext4PrjQuota} {
		t.Run(kind.Name, func(t *testing.T) {
			ctx := context.Background()
			s := quotaStore(t, kind)
			q, err := NewQuota(s)
			if err != nil {
				t.Fatal(err)
			}
			projectOf := func(dir string) uint32 {
				f, err := os.Open(s.Path(dir))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				id, err := quota.ProjectID(f)
				if err != nil {
					t.Fatal(err)
				}
				return id
			}

			// A parent an admin put under a project of its own, with a big limit.
			for _, d := range []string{"big", "old"} {
				if err := s.Mkdir(ctx, d, 0o777); err != nil {
					t.Fatal(err)
				}
			}
			if err := q.SetQuota(ctx, "big", 100*mib); err != nil {
				t.Fatal(err)
			}
			if err := s.Mkdir(ctx, "big/pvc-2", 0o777); err != nil {
				t.Fatal(err)
			}
			if projectOf("big/pvc-2") != projectOf("big") {
				t.Fatal("a directory under a PROJINHERIT parent did not inherit its project; the test premise is wrong")
			}
			if err := q.SetQuota(ctx, "big/pvc-2", 1*mib); err != nil {
				t.Fatal(err)
			}
			if projectOf("big/pvc-2") == projectOf("big") {
				t.Error("the volume kept its parent's project, so its limit capped the parent")
			}
			if u, err := q.fs.Usage(projectOf("big")); err != nil || u.Limit != 100*mib {
				t.Errorf("parent limit = %+v, %v; want 100 MiB untouched", u, err)
			}

			// A volume that held data before it got a quota.
			if err := writeFile(filepath.Join(s.Path("old"), "data"), 3*mib); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(s.Path("old"), "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/passwd", filepath.Join(s.Path("old"), "link")); err != nil {
				t.Fatal(err)
			}
			if err := q.SetQuota(ctx, "old", 4*mib); err != nil {
				t.Fatal(err)
			}
			bytes, _, err := q.Usage(ctx, "old")
			if err != nil || bytes < 3*mib {
				t.Errorf("Usage of a volume with old data = %d, %v; want at least 3 MiB", bytes, err)
			}
			if err := writeAsPod(filepath.Join(s.Path("old"), "sub", "more"), 2*mib); err == nil {
				t.Error("wrote 5 MiB into a 4 MiB volume")
			}
		})
	}
}

func TestQuotaUnavailable(t *testing.T) {
	tests := []struct {
		kind quotatest.Kind
		hint string // the part of the error that says how to fix it
	}{
		{kind: quotatest.Tmpfs, hint: "filesystem tmpfs has no project quotas; put it on XFS"},
		{kind: quotatest.Ext4Plain, hint: "ext4 is not mounted with prjquota (quotactl: function not implemented); unmount it, run tune2fs -O project -Q prjquota"},
		{kind: quotatest.Ext4AcctOnly, hint: "does not enforce limits; run mount -o remount,prjquota"},
		{kind: quotatest.XFSPlain, hint: "xfs is not mounted with prjquota (quotactl: function not implemented); add prjquota"},
	}
	for _, tt := range tests {
		t.Run(tt.kind.Name, func(t *testing.T) {
			ctx := context.Background()
			s := quotaStore(t, tt.kind)
			_, err := NewQuota(s)
			if !errors.Is(err, quota.ErrUnavailable) {
				t.Fatalf("NewQuota = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), tt.hint) || !strings.Contains(err.Error(), s.Base()) {
				t.Errorf("error %q does not name the base path and say %q", err, tt.hint)
			}
			t.Log(err)

			// Without quotas, usage still comes from walking the volume.
			if err := s.Mkdir(ctx, "pvc-1", 0o777); err != nil {
				t.Fatal(err)
			}
			if err := writeFile(filepath.Join(s.Path("pvc-1"), "a"), 1*mib); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(filepath.Join(s.Path("pvc-1"), "a"), filepath.Join(s.Path("pvc-1"), "a2")); err != nil {
				t.Fatal(err)
			}
			bytes, inodes, err := WalkUsage(ctx, s, "pvc-1")
			if err != nil {
				t.Fatal(err)
			}
			if bytes < 1*mib || bytes > 1*mib+64<<10 || inodes != 2 {
				t.Errorf("WalkUsage = %d bytes %d inodes, want 1 MiB counted once and 2 inodes", bytes, inodes)
			}
		})
	}
}

// Empty files take no blocks: without an inode limit a tenant could fill
// the filesystem's inode table, which every volume on the node shares.
func TestInodeQuotaEnforced(t *testing.T) {
	for _, kind := range []quotatest.Kind{quotatest.XFSPrjQuota, quotatest.Ext4PrjQuota} {
		t.Run(kind.Name, func(t *testing.T) {
			ctx := context.Background()
			s := quotaStore(t, kind)
			q, err := NewQuota(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Mkdir(ctx, "pvc-1", 0o777); err != nil {
				t.Fatal(err)
			}
			if err := q.SetQuota(ctx, "pvc-1", 1*mib); err != nil {
				t.Fatal(err)
			}
			limit := quota.InodesFor(1 * mib)
			vol := s.Path("pvc-1")
			made := 0
			err = asPod(func() error {
				for made < int(limit)+100 {
					f, err := os.Create(filepath.Join(vol, fmt.Sprint(made)))
					if err != nil {
						return err
					}
					f.Close()
					made++
				}
				return nil
			})
			if !errors.Is(err, syscall.EDQUOT) && !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("%d empty files in a volume limited to %d inodes: %v, want EDQUOT or ENOSPC", made, limit, err)
			}
			if made < int(limit)-2 {
				t.Errorf("refused after %d files, want about %d", made, limit)
			}
		})
	}
}
