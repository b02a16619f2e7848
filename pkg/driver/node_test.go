package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

const nfsVolume = "nfs#fd00::5#/export#pvc-1"

// kubeletTarget makes the parent of a target path the way kubelet lays it out.
func kubeletTarget(t *testing.T, pv string) string {
	return filepath.Join(t.TempDir(), "pods", "0b2c", "volumes", "kubernetes.io~csi", pv, "mount")
}

func newFakeNode(t *testing.T, lookup func(ctx context.Context, pvName, volumeID string) ([]string, error)) (*Driver, *mount.FakeMounter) {
	t.Helper()
	fake := mount.NewFakeMounter(nil)
	d, err := New(Options{Name: "csi.stowage.io", NodeID: "node-a", Mounter: fake, ClaimAccessModes: lookup,
		Backends: nfsVia(nil, fake), OtherMount: fakeOtherMount(fake)})
	if err != nil {
		t.Fatal(err)
	}
	return d, fake
}

func TestNodePublishNFSIPv6Source(t *testing.T) {
	d, fake := newFakeNode(t, nil)
	target := kubeletTarget(t, "pv-1")
	if _, err := d.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: nfsVolume, TargetPath: target,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
	}); err != nil {
		t.Fatal(err)
	}
	if log := fake.GetLog(); len(log) != 1 || log[0].Source != "[fd00::5]:/export/pvc-1" {
		t.Fatalf("mounts %+v, want one of [fd00::5]:/export/pvc-1", log)
	}
}

func TestAccessModesContext(t *testing.T) {
	c := mountCap
	tests := []struct {
		caps []*csi.VolumeCapability
		want string
	}{
		{nil, ""},
		{[]*csi.VolumeCapability{c(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}, "ReadWriteOnce"},
		{[]*csi.VolumeCapability{
			c(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
			c(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY),
		}, "ReadWriteMany,ReadOnlyMany"},
		{[]*csi.VolumeCapability{
			c(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER),
			c(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
			c(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER),
		}, "ReadWriteOnce,ReadWriteOncePod"},
		{[]*csi.VolumeCapability{c(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY), nil}, ""},
	}
	for _, tt := range tests {
		if got := accessModesContext(tt.caps); got != tt.want {
			t.Errorf("accessModesContext(%v) = %q, want %q", tt.caps, got, tt.want)
		}
	}
}

func TestPVNameOf(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/var/lib/kubelet/pods/0b2c/volumes/kubernetes.io~csi/pvc-1/mount", "pvc-1"},
		{"/var/lib/kubelet/pods/0b2c/volumes/kubernetes.io~csi/pvc-1/mount/", "pvc-1"},
		{"/var/lib/kubelet/pods/0b2c/volumes/kubernetes.io~csi/pvc-1", ""},
		{"/var/lib/kubelet/pods/0b2c/volumes/kubernetes.io~nfs/pvc-1/mount", ""},
		{"/tmp/target", ""},
		{"mount", ""},
	}
	for _, tt := range tests {
		got, ok := pvNameOf(tt.target)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("pvNameOf(%q) = %q, %v; want %q", tt.target, got, ok, tt.want)
		}
	}
}

// TestNodePublishReadOnly checks the mount options NodePublishVolume picks:
// read-only modes and requests, and the claim's modes for a volume made for
// ReadOnlyMany together with other modes.
func TestNodePublishReadOnly(t *testing.T) {
	const both = "ReadWriteMany,ReadOnlyMany"
	claim := func(modes ...string) func(context.Context, string, string) ([]string, error) {
		return func(_ context.Context, pv, volumeID string) ([]string, error) {
			if pv != "pv-1" || volumeID != nfsVolume {
				return nil, fmt.Errorf("lookup of PV %q volume %q, want pv-1 and %s", pv, volumeID, nfsVolume)
			}
			return modes, nil
		}
	}
	failing := func(err error) func(context.Context, string, string) ([]string, error) {
		return func(context.Context, string, string) ([]string, error) { return nil, err }
	}
	notCalled := failing(errors.New("the lookup must not be called"))
	tests := []struct {
		name     string
		mode     csi.VolumeCapability_AccessMode_Mode
		readonly bool
		context  string
		lookup   func(context.Context, string, string) ([]string, error)
		target   string // default a kubelet path of pv-1
		wantRO   bool
		wantCode codes.Code
		wantMsg  string
	}{
		{name: "RWX", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, lookup: notCalled},
		{name: "ROX mode", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, lookup: notCalled, wantRO: true},
		{name: "RWO read-only mode", mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, lookup: notCalled, wantRO: true},
		{name: "readonly request", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, readonly: true, lookup: notCalled, wantRO: true},
		{name: "context without ROX", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: "ReadWriteMany,ReadWriteOnce", lookup: notCalled},
		{name: "context ROX alone", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: "ReadOnlyMany", lookup: notCalled},
		{name: "ROX claim", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both, lookup: claim("ReadOnlyMany"), wantRO: true},
		{name: "RWX claim", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both, lookup: claim("ReadWriteMany")},
		{name: "RWX and ROX claim", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both, lookup: claim("ReadOnlyMany", "ReadWriteMany")},
		{name: "claim without modes", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both, lookup: claim(),
			wantCode: codes.FailedPrecondition, wantMsg: "no access modes"},
		{name: "no lookup", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both},
		{name: "API down", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both,
			lookup: failing(errors.New("connection refused")), wantCode: codes.Unavailable, wantMsg: "not mounted read-write without knowing"},
		{name: "handle mismatch", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both,
			lookup: failing(fmt.Errorf("%w: PV pv-1 is not volume x", ErrNotTheClaim)), wantCode: codes.FailedPrecondition, wantMsg: "is not volume"},
		{name: "target not kubelet's", mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, context: both, lookup: notCalled,
			target: "elsewhere", wantCode: codes.FailedPrecondition, wantMsg: "claim cannot be found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, fake := newFakeNode(t, tt.lookup)
			target := kubeletTarget(t, "pv-1")
			if tt.target != "" {
				target = filepath.Join(t.TempDir(), tt.target)
			}
			capability := mountCap(tt.mode)
			capability.GetMount().MountFlags = []string{"nfsvers=4.1"}
			_, err := d.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
				VolumeId: nfsVolume, TargetPath: target, VolumeCapability: capability,
				Readonly: tt.readonly, VolumeContext: map[string]string{ContextAccessModes: tt.context},
			})
			if tt.wantCode != codes.OK {
				if code(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("got %v, want %v containing %q", err, tt.wantCode, tt.wantMsg)
				}
				if len(fake.MountPoints) != 0 {
					t.Fatalf("mounted %+v after a refused publish", fake.MountPoints)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(fake.MountPoints) != 1 {
				t.Fatalf("mount points %+v, want one", fake.MountPoints)
			}
			opts := fake.MountPoints[0].Opts
			if !slices.Contains(opts, "nfsvers=4.1") {
				t.Errorf("options %v lost the capability's mount flags", opts)
			}
			if slices.Contains(opts, "ro") != tt.wantRO {
				t.Errorf("options %v, want read-only %v", opts, tt.wantRO)
			}
		})
	}
}

// TestNodePublishUnpublishFake publishes twice (kubelet retries) and
// unpublishes twice with a fake mounter.
func TestNodePublishUnpublishFake(t *testing.T) {
	d, fake := newFakeNode(t, nil)
	ctx := context.Background()
	target := kubeletTarget(t, "pv-1")
	pub := &csi.NodePublishVolumeRequest{
		VolumeId: nfsVolume, TargetPath: target,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
	}
	for range 2 {
		if _, err := d.NodePublishVolume(ctx, pub); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(fake.GetLog()); n != 1 {
		t.Fatalf("%d mount actions %+v, want 1", n, fake.GetLog())
	}
	for range 2 {
		if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: nfsVolume, TargetPath: target}); err != nil {
			t.Fatal(err)
		}
	}
	if len(fake.MountPoints) != 0 {
		t.Errorf("still mounted: %+v", fake.MountPoints)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target after unpublish: %v, want it removed", err)
	}
	for _, req := range []*csi.NodeUnpublishVolumeRequest{{TargetPath: target}, {VolumeId: nfsVolume}} {
		if _, err := d.NodeUnpublishVolume(ctx, req); code(err) != codes.InvalidArgument {
			t.Errorf("NodeUnpublishVolume(%v): %v, want InvalidArgument", req, err)
		}
	}
}

// mountsAt counts the entries of this process's mount table at target.
func mountsAt(t *testing.T, target string) int {
	t.Helper()
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range infos {
		if m.MountPoint == target {
			n++
		}
	}
	return n
}

// deviceMounter is a real mounter whose IsLikelyNotMountPoint compares the
// devices of a path and its parent, as mount-utils does on kernels without
// statx's mount-root attribute (before 5.8): a bind mount from the same
// filesystem is then not seen as a mount point.
type deviceMounter struct{ mount.Interface }

func (deviceMounter) IsLikelyNotMountPoint(file string) (bool, error) {
	var st, parent syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		return true, err
	}
	if err := syscall.Stat(filepath.Dir(file), &parent); err != nil {
		return true, err
	}
	return st.Dev == parent.Dev, nil
}

// newRealLocalNode makes a node driver with a real mounter on a local base
// path holding dirs, and unmounts whatever is left below targets at the end.
func newRealLocalNode(t *testing.T, dirs ...string) (d *Driver, base, targets string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for mounts")
	}
	d, base = newLocalDriver(t)
	d.opts.Mounter = deviceMounter{mount.New("")}
	targets = t.TempDir()
	for _, dir := range dirs {
		if err := os.MkdirAll(filepath.Join(base, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		infos, _ := mount.ParseMountInfo("/proc/self/mountinfo")
		for i := len(infos) - 1; i >= 0; i-- {
			if strings.HasPrefix(infos[i].MountPoint, targets+"/") {
				_ = syscall.Unmount(infos[i].MountPoint, syscall.MNT_DETACH)
			}
		}
	})
	return d, base, targets
}

func localID(dir string) string {
	return volumeid.ID{Backend: volumeid.Local, Node: "node-a", Dir: dir}.String()
}

// TestNodePublishLocalRetry publishes a local volume twice on one target: a
// bind mount from the same filesystem must be seen as mounted, not stacked.
func TestNodePublishLocalRetry(t *testing.T) {
	d, _, targets := newRealLocalNode(t, "vol")
	ctx := context.Background()
	target := filepath.Join(targets, "pod-1", "mount")
	for _, ro := range []bool{false, true} {
		req := &csi.NodePublishVolumeRequest{
			VolumeId: localID("vol"), TargetPath: target, Readonly: ro,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
		}
		for range 2 {
			if _, err := d.NodePublishVolume(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		if n := mountsAt(t, target); n != 1 {
			t.Fatalf("readonly=%v: %d mounts at the target after a retried publish, want 1", ro, n)
		}
		if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: localID("vol"), TargetPath: target}); err != nil {
			t.Fatal(err)
		}
		if n := mountsAt(t, target); n != 0 {
			t.Fatalf("readonly=%v: %d mounts at the target after unpublish, want 0", ro, n)
		}
	}
}

// TestNodePublishLocalReadOnly checks that a read-only mode is enforced on a
// local bind although the pod did not ask for readOnly.
func TestNodePublishLocalReadOnly(t *testing.T) {
	d, base, targets := newRealLocalNode(t, "vol")
	target := filepath.Join(targets, "pod-1", "mount")
	if _, err := d.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: localID("vol"), TargetPath: target,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY),
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write through a SINGLE_NODE_READER_ONLY publish: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(base, "vol", "x"), nil, 0o644); err != nil {
		t.Fatalf("the volume itself must stay writable: %v", err)
	}
}

// TestNodePublishLocalSymlinkRefused plants a symlink where a nested volume's
// directory should be: the publish is refused and nothing is mounted.
func TestNodePublishLocalSymlinkRefused(t *testing.T) {
	d, base, targets := newRealLocalNode(t, "outer")
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(base, "outer", "inner")); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(targets, "pod-1", "mount")
	for _, mode := range []csi.VolumeCapability_AccessMode_Mode{
		csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
	} {
		_, err := d.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
			VolumeId: localID("outer/inner"), TargetPath: target, VolumeCapability: mountCap(mode),
		})
		if code(err) != codes.NotFound || !strings.Contains(err.Error(), "not a plain directory") {
			t.Fatalf("%v: publish through a symlink: %v, want NotFound (not a plain directory)", mode, err)
		}
		if n := mountsAt(t, target); n != 0 {
			t.Fatalf("%v: %d mounts at the target after a refused publish", mode, n)
		}
	}
}

// TestNodePublishReadWriteOncePod publishes a ReadWriteOncePod volume on two
// targets: the second is refused and undone, a retry of the first succeeds,
// and after the first is unpublished the second can be published.
func TestNodePublishReadWriteOncePod(t *testing.T) {
	d, _, targets := newRealLocalNode(t, "vol")
	ctx := context.Background()
	first, second := filepath.Join(targets, "pod-1", "mount"), filepath.Join(targets, "pod-2", "mount")
	pub := func(target string) error {
		_, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId: localID("vol"), TargetPath: target,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER),
		})
		return err
	}
	if err := pub(first); err != nil {
		t.Fatal(err)
	}
	if err := pub(second); code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), first) {
		t.Fatalf("second target: %v, want FailedPrecondition naming %s", err, first)
	}
	if n := mountsAt(t, second); n != 0 {
		t.Fatalf("%d mounts left at the refused target", n)
	}
	if err := pub(first); err != nil {
		t.Fatalf("retry on the first target: %v", err)
	}
	if n := mountsAt(t, first); n != 1 {
		t.Fatalf("%d mounts at the first target, want 1", n)
	}
	if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: localID("vol"), TargetPath: first}); err != nil {
		t.Fatal(err)
	}
	if err := pub(second); err != nil {
		t.Fatalf("second target after the first was unpublished: %v", err)
	}
}
