// Package quotatest makes real loop-backed filesystems for quota tests.
package quotatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Kind is one filesystem setup a test can ask for.
type Kind struct {
	Name  string
	FS    string   // filesystem type for mount
	Mkfs  []string // mkfs command, the image path is appended
	Mount string   // mount options
	// Quota says whether the setup enforces project quotas; when it does and
	// the running kernel cannot mount it so, the test skips.
	Quota bool
}

var (
	XFSPrjQuota = Kind{Name: "xfs-prjquota", FS: "xfs", Mkfs: []string{"mkfs.xfs", "-q", "-f"}, Mount: "prjquota", Quota: true}
	// ext4 keeps project quota in hidden inodes (quota feature) and tags
	// inodes with a project ID (project feature, needs 256-byte inodes).
	Ext4PrjQuota = Kind{Name: "ext4-prjquota", FS: "ext4", Mkfs: []string{"mkfs.ext4", "-q", "-F", "-I", "256", "-O", "quota,project", "-E", "quotatype=prjquota"}, Mount: "prjquota", Quota: true}
	XFSPlain     = Kind{Name: "xfs-plain", FS: "xfs", Mkfs: []string{"mkfs.xfs", "-q", "-f"}}
	Ext4Plain    = Kind{Name: "ext4-plain", FS: "ext4", Mkfs: []string{"mkfs.ext4", "-q", "-F"}}
	// Ext4AcctOnly has the quota feature, so the kernel counts project usage,
	// but is mounted without prjquota, so limits are not enforced.
	Ext4AcctOnly = Kind{Name: "ext4-accounting-only", FS: "ext4", Mkfs: []string{"mkfs.ext4", "-q", "-F", "-I", "256", "-O", "quota,project", "-E", "quotatype=prjquota"}, Quota: true}
	Tmpfs        = Kind{Name: "tmpfs", FS: "tmpfs"}
)

// Mount creates and mounts a fresh filesystem of kind and returns its mount
// point. It skips the test when not root or a tool is missing, and unmounts
// and detaches the loop device when the test ends, pass or fail.
func Mount(t testing.TB, kind Kind) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make loop devices and mount filesystems")
	}
	tools := []string{"losetup", "mount", "umount"}
	if len(kind.Mkfs) > 0 {
		tools = append(tools, kind.Mkfs[0])
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if kind.FS == "tmpfs" {
		mount(t, "tmpfs", "tmpfs", "size=64m", mnt)
		return mnt
	}
	img := filepath.Join(dir, "disk.img")
	// 300 MiB is the smallest XFS that current mkfs.xfs accepts; the file is
	// sparse, so it costs only what is written.
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 300<<20); err != nil {
		t.Fatal(err)
	}
	run(t, append(kind.Mkfs, img)...)
	dev := strings.TrimSpace(run(t, "losetup", "-f", "--show", img))
	t.Cleanup(func() { runQuiet(t, "losetup", "-d", dev) })
	if err := tryMount(kind.FS, kind.Mount, dev, mnt); err != nil {
		if kind.Quota {
			t.Skipf("this kernel cannot mount %s with project quota (built without CONFIG_XFS_QUOTA or CONFIG_QFMT_V2? see dmesg): %v; run pkg/quota/testdata/uml-test.sh for a kernel that can", kind.Name, err)
		}
		t.Fatalf("mount %s: %v", kind.Name, err)
	}
	t.Cleanup(func() { unmount(t, mnt) })
	return mnt
}

func mount(t testing.TB, fstype, source, opts, mnt string) {
	t.Helper()
	if err := tryMount(fstype, opts, source, mnt); err != nil {
		t.Fatalf("mount %s on %s: %v", fstype, mnt, err)
	}
	t.Cleanup(func() { unmount(t, mnt) })
}

func tryMount(fstype, opts, source, mnt string) error {
	args := []string{"-t", fstype}
	if opts != "" {
		args = append(args, "-o", opts)
	}
	out, err := exec.Command("mount", append(args, source, mnt)...).CombinedOutput()
	if err != nil {
		return &cmdError{strings.TrimSpace(string(out)), err}
	}
	return nil
}

// unmount falls back to a lazy unmount so a file a failed test left open
// cannot keep the loop device busy forever.
func unmount(t testing.TB, mnt string) {
	if exec.Command("umount", mnt).Run() != nil {
		runQuiet(t, "umount", "-l", mnt)
	}
}

type cmdError struct {
	out string
	err error
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + e.out }

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func runQuiet(t testing.TB, args ...string) {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Logf("cleanup: %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
