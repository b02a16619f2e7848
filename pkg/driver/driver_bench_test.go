package driver_test

// Benchmarks of the CSI services over their real gRPC unix socket, each next
// to the floor it is judged against, measured in the same run:
//
//	BenchmarkFloorEmptyCall       Identity/Probe on the same kind of socket: gRPC + framing only
//	BenchmarkFloorMkdirRmdir      os.Mkdir + os.Remove in the same filesystem
//	BenchmarkFloorMountUmount     mount(2) MS_BIND + umount2(2), no fork
//	BenchmarkFloorMountUmountExec mount(8) --bind + umount(8), as k8s.io/mount-utils does it
//	BenchmarkFloorNFSMkdirRmdir   the userspace NFS client's Mkdir + RemoveAll
//	BenchmarkCreateDeleteLocal    CreateVolume + DeleteVolume, local backend
//	BenchmarkCreateDeleteLocalInProcess  the same two methods called directly, no gRPC
//	BenchmarkCreateDeleteNFS      CreateVolume + DeleteVolume, NFS backend (needs STOWAGE_TEST_NFS_SERVER)
//	BenchmarkPublishUnpublish     NodePublishVolume + NodeUnpublishVolume of a local volume (root)
//
// test/bench/run.sh runs them (inside a private mount namespace, so that the
// bind mounts never reach the host's table) and turns the output into
// docs/bench/csi.json. Nothing here asserts on time.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
	"github.com/stowage-csi/stowage/pkg/backend/nfs"
	"github.com/stowage-csi/stowage/pkg/driver"
)

const benchNode = "bench-node"

// benchConn serves a driver on a socket in a fresh directory and returns a
// client connection to it.
func benchConn(b *testing.B, opts driver.Options) *grpc.ClientConn {
	b.Helper()
	d, err := driver.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "csi.sock")
	l, err := driver.Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = driver.Serve(ctx, l, d); close(done) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(); cancel(); <-done })
	return conn
}

// localDriver is a node-mode driver with a local store in a fresh base path.
func localDriver(b *testing.B) (*grpc.ClientConn, string) {
	b.Helper()
	base := filepath.Join(b.TempDir(), "base")
	if err := os.Mkdir(base, 0o711); err != nil {
		b.Fatal(err)
	}
	store, err := local.Open(base)
	if err != nil {
		b.Fatal(err)
	}
	return benchConn(b, driver.Options{Name: "csi.stowage.io", Version: "bench", NodeID: benchNode, Backends: []backend.Backend{local.NewBackend(benchNode, store, nil)}}), base
}

func rwo() []*csi.VolumeCapability {
	return []*csi.VolumeCapability{{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}}
}

func createReq(i int64, params map[string]string) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               fmt.Sprintf("pvc-bench-%d", i),
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 1 << 20},
		VolumeCapabilities: rwo(),
		Parameters:         params,
	}
}

func createDelete(ctx context.Context, b *testing.B, c csi.ControllerClient, i int64, params map[string]string) {
	resp, err := c.CreateVolume(ctx, createReq(i, params))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: resp.GetVolume().GetVolumeId()}); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkFloorEmptyCall(b *testing.B) {
	conn, _ := localDriver(b)
	c := csi.NewIdentityClient(conn)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Probe(ctx, &csi.ProbeRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Probe(ctx, &csi.ProbeRequest{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkCreateDeleteLocal(b *testing.B) {
	conn, _ := localDriver(b)
	c := csi.NewControllerClient(conn)
	ctx := context.Background()
	params := map[string]string{"backend": "local"}
	var n atomic.Int64
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			createDelete(ctx, b, c, n.Add(1), params)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				createDelete(ctx, b, c, n.Add(1), params)
			}
		})
	})
}

// BenchmarkCreateDeleteLocalInProcess calls the same methods without gRPC:
// what the filesystem work and the bookkeeping cost on their own.
func BenchmarkCreateDeleteLocalInProcess(b *testing.B) {
	base := filepath.Join(b.TempDir(), "base")
	if err := os.Mkdir(base, 0o711); err != nil {
		b.Fatal(err)
	}
	store, err := local.Open(base)
	if err != nil {
		b.Fatal(err)
	}
	d, err := driver.New(driver.Options{Name: "csi.stowage.io", Version: "bench", NodeID: benchNode, Backends: []backend.Backend{local.NewBackend(benchNode, store, nil)}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	params := map[string]string{"backend": "local"}
	var n int64
	for b.Loop() {
		n++
		resp, err := d.CreateVolume(ctx, createReq(n, params))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: resp.GetVolume().GetVolumeId()}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFloorMkdirRmdir(b *testing.B) {
	// The same filesystem as BenchmarkCreateDeleteLocal's base path.
	base := b.TempDir()
	var n atomic.Int64
	for b.Loop() {
		dir := filepath.Join(base, fmt.Sprintf("pvc-bench-%d", n.Add(1)))
		if err := os.Mkdir(dir, 0o777); err != nil {
			b.Fatal(err)
		}
		if err := os.Remove(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func needRoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("mount benchmarks need root; run test/bench/run.sh --parts=csi as root")
	}
}

func BenchmarkFloorMountUmount(b *testing.B) {
	needRoot(b)
	dir := b.TempDir()
	src, target := filepath.Join(dir, "src"), filepath.Join(dir, "target")
	for _, d := range []string{src, target} {
		if err := os.Mkdir(d, 0o750); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Unmount(target, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorMountUmountExec is the same bind mount through mount(8) and
// umount(8), which is how k8s.io/mount-utils mounts: the floor for any
// driver built on it.
func BenchmarkFloorMountUmountExec(b *testing.B) {
	needRoot(b)
	dir := b.TempDir()
	src, target := filepath.Join(dir, "src"), filepath.Join(dir, "target")
	for _, d := range []string{src, target} {
		if err := os.Mkdir(d, 0o750); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if out, err := exec.Command("mount", "--bind", src, target).CombinedOutput(); err != nil {
			b.Fatalf("mount: %v: %s", err, out)
		}
		if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
			b.Fatalf("umount: %v: %s", err, out)
		}
	}
}

func BenchmarkPublishUnpublish(b *testing.B) {
	needRoot(b)
	conn, _ := localDriver(b)
	ctx := context.Background()
	resp, err := csi.NewControllerClient(conn).CreateVolume(ctx, createReq(0, map[string]string{"backend": "local"}))
	if err != nil {
		b.Fatal(err)
	}
	id := resp.GetVolume().GetVolumeId()
	node := csi.NewNodeClient(conn)
	targets := b.TempDir()
	var n atomic.Int64
	for b.Loop() {
		// kubelet hands every pod its own target path.
		target := filepath.Join(targets, fmt.Sprintf("pod-%d", n.Add(1)), "mount")
		if _, err := node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId: id, TargetPath: target, VolumeCapability: rwo()[0],
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
			b.Fatal(err)
		}
	}
}

// nfsEnv returns the test NFS server, or skips.
func nfsEnv(b *testing.B) (server, share string) {
	server, share = os.Getenv("STOWAGE_TEST_NFS_SERVER"), os.Getenv("STOWAGE_TEST_NFS_SHARE")
	if server == "" {
		b.Skip("set STOWAGE_TEST_NFS_SERVER (and STOWAGE_TEST_NFS_SHARE, default /export); test/nfs/ganesha.sh start runs one")
	}
	if share == "" {
		share = "/export"
	}
	return server, share
}

func BenchmarkFloorNFSMkdirRmdir(b *testing.B) {
	server, share := nfsEnv(b)
	pool := nfs.NewPool(nfs.Options{})
	b.Cleanup(func() { pool.Close() })
	ctx := context.Background()
	st, err := pool.Get(ctx, server, share)
	if err != nil {
		b.Fatal(err)
	}
	prefix := fmt.Sprintf("bench-floor-%d", os.Getpid())
	var n atomic.Int64
	for b.Loop() {
		dir := fmt.Sprintf("%s-%d", prefix, n.Add(1))
		if err := st.Mkdir(ctx, dir, 0o777); err != nil {
			b.Fatal(err)
		}
		if err := st.RemoveAll(ctx, dir); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateDeleteNFS(b *testing.B) {
	server, share := nfsEnv(b)
	pool := nfs.NewPool(nfs.Options{})
	b.Cleanup(func() { pool.Close() })
	conn := benchConn(b, driver.Options{Name: "csi.stowage.io", Version: "bench", Backends: []backend.Backend{nfs.NewBackend(pool, nil)}})
	c := csi.NewControllerClient(conn)
	ctx := context.Background()
	params := map[string]string{"backend": "nfs", "server": server, "share": share}
	// Distinct names per process: the share is shared with other runs.
	base := int64(os.Getpid()) << 32
	var n atomic.Int64
	for b.Loop() {
		createDelete(ctx, b, c, base+n.Add(1), params)
	}
}
