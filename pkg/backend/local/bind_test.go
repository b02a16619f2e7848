package local

import (
	"errors"
	mount "k8s.io/mount-utils"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBindReadOnlyPropagates mounts read-only below a shared mount from a
// child mount namespace, as the node plugin does below kubelet's pods
// directory, and checks that the parent's copy is read-only too.
func TestBindReadOnlyPropagates(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mounts")
	}
	dir := t.TempDir()
	src, shared := filepath.Join(dir, "src"), filepath.Join(dir, "shared")
	target := filepath.Join(shared, "t")
	for _, d := range []string{src, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("sh", "-c", "mount --bind "+shared+" "+shared+" && mount --make-shared "+shared).CombinedOutput(); err != nil {
		t.Fatalf("make %s shared: %v %s", shared, err, out)
	}
	t.Cleanup(func() {
		_ = syscall.Unmount(target, syscall.MNT_DETACH)
		_ = syscall.Unmount(shared, syscall.MNT_DETACH)
	})
	// The child namespace runs this test binary again, calling bindReadOnly.
	// (Go's own Unshareflags would make every mount private and hide the point.)
	cmd := exec.Command("unshare", "--mount", "--propagation", "unchanged", os.Args[0], "-test.run=TestBindReadOnlyHelper")
	cmd.Env = append(os.Environ(), "STOWAGE_BINDRO_SRC="+src, "STOWAGE_BINDRO_TARGET="+target)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	err := os.WriteFile(filepath.Join(target, "x"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write through the propagated mount: %v, want EROFS", err)
	}
}

func TestBindReadOnlyHelper(t *testing.T) {
	src, target := os.Getenv("STOWAGE_BINDRO_SRC"), os.Getenv("STOWAGE_BINDRO_TARGET")
	if src == "" {
		t.Skip("run by TestBindReadOnlyPropagates")
	}
	dir, err := os.OpenFile(src, os.O_RDONLY|unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if err := bindReadOnly(dir, target); err != nil {
		t.Fatal(err)
	}
}

// TestBindFromDescriptorAfterSwap swaps the opened volume directory for a
// symlink to a directory outside the base path before binding, as the owner
// of an enclosing volume could between the check and the mount: both binds
// must show the directory that was opened.
func TestBindFromDescriptorAfterSwap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mounts")
	}
	base, targets := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(base, "outer/inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountUnder(targets) })
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "outer/inner/volume"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := s.OpenDir("outer/inner")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if err := os.Rename(filepath.Join(base, "outer/inner"), filepath.Join(base, "outer/moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(base, "outer/inner")); err != nil {
		t.Fatal(err)
	}
	for name, bind := range map[string]func(*os.File, string) error{"bindDir": bindDir, "bindReadOnly": bindReadOnly} {
		target := filepath.Join(targets, name)
		if err := os.Mkdir(target, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := bind(dir, target); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(target, "secret")); err == nil {
			t.Errorf("%s followed the symlink swapped in after OpenDir", name)
		}
		if _, err := os.Stat(filepath.Join(target, "volume")); err != nil {
			t.Errorf("%s does not show the opened directory: %v", name, err)
		}
	}
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	infos, _ := mount.ParseMountInfo("/proc/self/mountinfo")
	for i := len(infos) - 1; i >= 0; i-- {
		if strings.HasPrefix(infos[i].MountPoint, dir+"/") {
			_ = syscall.Unmount(infos[i].MountPoint, syscall.MNT_DETACH)
		}
	}
}
