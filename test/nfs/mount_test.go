// Package nfstest checks the test NFS harness itself: that node-side mounts
// through k8s.io/mount-utils work inside test/nfs/in-mount-ns.sh, and that
// they show what the controller's userspace client wrote on the server.
//
//	test/nfs/ganesha.sh start
//	STOWAGE_TEST_NFS_SERVER=127.0.0.1 STOWAGE_TEST_NFS_SHARE=/export \
//	STOWAGE_TEST_NFS_DIR=/tmp/stowage-nfs/export \
//	    test/nfs/in-mount-ns.sh go test ./test/nfs/
package nfstest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/backend/nfs"
)

func inMountNS(t *testing.T) {
	t.Helper()
	if os.Getenv("STOWAGE_FAKE_NFS_EXPORTS") == "" {
		t.Skip("run inside test/nfs/in-mount-ns.sh, which provides the test mount.nfs")
	}
}

func TestMountThroughMountUtils(t *testing.T) {
	inMountNS(t)
	server := os.Getenv("STOWAGE_TEST_NFS_SERVER")
	share := os.Getenv("STOWAGE_TEST_NFS_SHARE")
	if server == "" || share == "" || os.Getenv("STOWAGE_TEST_NFS_DIR") == "" {
		t.Skip("needs STOWAGE_TEST_NFS_SERVER, STOWAGE_TEST_NFS_SHARE and STOWAGE_TEST_NFS_DIR (see test/nfs/README.md)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The controller's side: a volume directory made in userspace.
	st, err := nfs.Open(ctx, server, share)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vol := "mount-test-" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	if err := st.Mkdir(ctx, vol, 0o777); err != nil {
		t.Fatal(err)
	}
	defer st.RemoveAll(ctx, vol)

	// The node's side: mount server:/share/vol as a CSI node plugin would.
	m := mount.New("")
	tmp := t.TempDir()
	rw, ro := filepath.Join(tmp, "rw"), filepath.Join(tmp, "ro")
	for _, d := range []string{rw, ro} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	source := server + ":" + share + "/" + vol
	if err := m.Mount(source, rw, "nfs", []string{"nfsvers=4.1", "hard"}); err != nil {
		t.Fatalf("mount %s: %v", source, err)
	}
	defer mount.CleanupMountPoint(rw, m, false)
	if err := m.Mount(source, ro, "nfs", []string{"ro"}); err != nil {
		t.Fatalf("mount %s read-only: %v", source, err)
	}
	defer mount.CleanupMountPoint(ro, m, false)

	for _, d := range []string{rw, ro} {
		notMnt, err := m.IsLikelyNotMountPoint(d)
		if err != nil || notMnt {
			t.Errorf("IsLikelyNotMountPoint(%s) = %v, %v; want false", d, notMnt, err)
		}
	}
	if err := os.WriteFile(filepath.Join(rw, "from-pod"), []byte("hello"), 0o644); err != nil {
		t.Fatalf("write through the mount: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(ro, "from-pod")); err != nil || string(b) != "hello" {
		t.Errorf("read through the read-only mount = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(ro, "denied"), nil, 0o644); err == nil {
		t.Errorf("writing through the read-only mount succeeded")
	}
	// What the pod wrote is on the server, where the controller sees it.
	if err := st.Scrub(ctx, vol); err != nil {
		t.Fatalf("Scrub: %v", err)
	}
	if entries, err := os.ReadDir(rw); err != nil || len(entries) != 0 {
		t.Errorf("after a userspace Scrub the mount holds %d entries (%v)", len(entries), err)
	}

	if err := mount.CleanupMountPoint(rw, m, false); err != nil {
		t.Errorf("CleanupMountPoint: %v", err)
	}
	if _, err := os.Stat(rw); !os.IsNotExist(err) {
		t.Errorf("mount point left behind after cleanup: %v", err)
	}
}

func TestMountErrors(t *testing.T) {
	inMountNS(t)
	m := mount.New("")
	target := t.TempDir()
	server := os.Getenv("STOWAGE_TEST_NFS_SERVER")
	if server == "" {
		server = "127.0.0.1"
	}
	tests := []struct {
		source string
		want   string
	}{
		{server + ":/not-exported", "access denied by server"},
		{server + ":/export/no-such-volume-dir", "No such file or directory"},
		{server + ":/export/../etc", "Permission denied"},
		{"10.255.255.1:/export", "access denied by server"},
		{"no-colon", "host:dir"},
	}
	for _, tc := range tests {
		err := m.Mount(tc.source, target, "nfs", nil)
		if err == nil {
			mount.CleanupMountPoint(target, m, false)
			t.Errorf("mount %s succeeded, want an error", tc.source)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "exit status 32") {
			t.Errorf("mount %s: %v; want exit status 32 and %q", tc.source, err, tc.want)
		}
	}
	if notMnt, err := m.IsLikelyNotMountPoint(target); err != nil || !notMnt {
		t.Errorf("a failed mount left %s mounted", target)
	}
}
