package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
)

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func newLocalDriver(t *testing.T) (*Driver, string) {
	t.Helper()
	base := t.TempDir()
	store, err := local.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Name: "csi.stowage.io", NodeID: "node-a", Backends: localOn("node-a", store)})
	if err != nil {
		t.Fatal(err)
	}
	return d, base
}

func createReq(name string, size int64, params map[string]string) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)},
		Parameters:         params,
	}
}

func code(err error) codes.Code { return status.Code(err) }

func TestCheckCapability(t *testing.T) {
	block := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
	tests := []struct {
		backend string
		cap     *csi.VolumeCapability
		wantErr string
	}{
		{"local", mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER), ""},
		{"local", mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER), ""},
		{"local", mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY), ""},
		{"local", mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), "use an NFS StorageClass"},
		{"local", mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY), "ReadOnlyMany"},
		{"nfs", mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), ""},
		{"nfs", mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY), ""},
		{"nfs", mountCap(csi.VolumeCapability_AccessMode_UNKNOWN), "not supported"},
		{"nfs", block, "block volumes are not supported"},
		{"nfs", nil, "missing"},
	}
	kinds := map[string]backend.Backend{"local": localOn("node-a", nil)[0], "nfs": nfsVia(nil, nil)[0]}
	for _, tt := range tests {
		err := checkCapability(kinds[tt.backend], tt.cap)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s %v: %v", tt.backend, tt.cap, err)
			}
			continue
		}
		if code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s %v: got %v, want InvalidArgument containing %q", tt.backend, tt.cap, err, tt.wantErr)
		}
	}
}

func TestReadOnlyMode(t *testing.T) {
	for mode, want := range map[csi.VolumeCapability_AccessMode_Mode]bool{
		csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:  true,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY: true,
		csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER: false,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER:      false,
	} {
		if got := readOnlyMode(mountCap(mode)); got != want {
			t.Errorf("readOnlyMode(%v) = %v, want %v", mode, got, want)
		}
	}
}

func TestCapacity(t *testing.T) {
	tests := []struct {
		r       *csi.CapacityRange
		want    int64
		wantErr bool
	}{
		{nil, DefaultCapacity, false},
		{&csi.CapacityRange{RequiredBytes: 5}, 5, false},
		{&csi.CapacityRange{LimitBytes: 100}, 100, false},
		{&csi.CapacityRange{RequiredBytes: 10, LimitBytes: 5}, 0, true},
		{&csi.CapacityRange{RequiredBytes: -1}, 0, true},
	}
	for _, tt := range tests {
		got, err := capacity(tt.r)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("capacity(%v) = %d, %v", tt.r, got, err)
		}
	}
}

func TestCreateVolumeIdempotent(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	p := map[string]string{"backend": "local", "dirMode": "0750"}
	first, err := d.CreateVolume(ctx, createReq("pvc-1", 1<<20, p))
	if err != nil {
		t.Fatal(err)
	}
	if first.Volume.VolumeId != "local#node-a#pvc-1#pvc-1#delete" || first.Volume.CapacityBytes != 1<<20 {
		t.Fatalf("volume = %+v", first.Volume)
	}
	if seg := first.Volume.AccessibleTopology[0].Segments[TopologyKey]; seg != "node-a" {
		t.Fatalf("topology = %v", first.Volume.AccessibleTopology)
	}
	fi, err := os.Stat(filepath.Join(base, "pvc-1"))
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("dir: %v %v", fi, err)
	}
	again, err := d.CreateVolume(ctx, createReq("pvc-1", 1<<20, p))
	if err != nil || again.Volume.VolumeId != first.Volume.VolumeId {
		t.Fatalf("second create = %v, %v", again, err)
	}
	if _, err := d.CreateVolume(ctx, createReq("pvc-1", 2<<20, p)); code(err) != codes.AlreadyExists {
		t.Fatalf("create with a bigger size: %v, want AlreadyExists", err)
	}
}

func TestCreateVolumeRejects(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	rwx := createReq("pvc-x", 1, map[string]string{"backend": "local"})
	rwx.VolumeCapabilities = []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
	tests := []struct {
		name string
		req  *csi.CreateVolumeRequest
		want codes.Code
	}{
		{"no name", createReq("", 1, map[string]string{"backend": "local"}), codes.InvalidArgument},
		{"unknown param", createReq("a", 1, map[string]string{"backend": "local", "size": "1"}), codes.InvalidArgument},
		{"local rwx", rwx, codes.InvalidArgument},
		{"huge", createReq("a", 1<<62, map[string]string{"backend": "local"}), codes.ResourceExhausted},
		{"nfs without pool", createReq("a", 1, map[string]string{"backend": "nfs", "server": "s", "share": "/e"}), codes.FailedPrecondition},
	}
	for _, tt := range tests {
		if _, err := d.CreateVolume(ctx, tt.req); code(err) != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.Name() != ".stowage" {
			t.Errorf("a refused create left %s behind", e.Name())
		}
	}
}

func TestDeleteVolumeOnDelete(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"delete", "retain", "archive"} {
		t.Run(mode, func(t *testing.T) {
			d, base := newLocalDriver(t)
			vol, err := d.CreateVolume(ctx, createReq("pvc-1", 1, map[string]string{"backend": "local", "onDelete": mode}))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(base, "pvc-1", "data"), []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			// A sibling that must survive whatever happens.
			if err := os.MkdirAll(filepath.Join(base, "pvc-10"), 0o755); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // the second delete must be a no-op
				if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: vol.Volume.VolumeId}); err != nil {
					t.Fatal(err)
				}
			}
			_, err = os.Stat(filepath.Join(base, "pvc-1", "data"))
			if gone := os.IsNotExist(err); gone != (mode != "retain") {
				t.Fatalf("after delete with %s: data gone = %v", mode, gone)
			}
			if mode == "archive" {
				m, _ := filepath.Glob(filepath.Join(base, "archived-*-pvc-1", "data"))
				if len(m) != 1 {
					t.Fatalf("archived data not found: %v", m)
				}
			}
			if _, err := os.Stat(filepath.Join(base, "pvc-10")); err != nil {
				t.Fatalf("sibling touched: %v", err)
			}
		})
	}
}

func TestDeleteVolumeUnknownIDs(t *testing.T) {
	d, _ := newLocalDriver(t)
	for _, id := range []string{"garbage", "local#node-a#never-made", "nfs#x#/e#../../etc"} {
		if _, err := d.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
			t.Errorf("DeleteVolume(%q): %v", id, err)
		}
	}
	if _, err := d.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{}); code(err) != codes.InvalidArgument {
		t.Errorf("empty ID: %v", err)
	}
}

func TestScrubKeepsOutsideOfSymlinks(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	vol, err := d.CreateVolume(ctx, createReq("pvc-1", 1, map[string]string{"backend": "local"}))
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	vdir := filepath.Join(base, "pvc-1")
	_ = os.Symlink(outside, filepath.Join(vdir, "escape"))
	_ = os.Symlink("/", filepath.Join(vdir, "root"))
	_ = os.MkdirAll(filepath.Join(vdir, "deep", "er"), 0o755)
	if err := d.ScrubVolume(ctx, vol.Volume.VolumeId, ""); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(vdir); len(left) != 0 {
		t.Fatalf("scrub left %v", left)
	}
	if _, err := os.Stat(filepath.Join(outside, "precious")); err != nil {
		t.Fatalf("scrub followed a symlink out of the volume: %v", err)
	}
}

func TestLocalVolumeOnOtherNode(t *testing.T) {
	d, _ := newLocalDriver(t)
	ctx := context.Background()
	_, err := d.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
		VolumeId: "local#node-b#pvc-1", NodeId: "node-c",
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
	})
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "lives on node node-b") {
		t.Fatalf("publish on another node: %v", err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "local#node-b#pvc-1"}); code(err) != codes.FailedPrecondition {
		t.Fatalf("delete on the wrong node: %v", err)
	}
}

func TestLocks(t *testing.T) {
	l := newLocks()
	release, err := l.acquire("v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire("v1"); code(err) != codes.Aborted {
		t.Fatalf("second acquire: %v, want Aborted", err)
	}
	other, err := l.acquire("v2")
	if err != nil {
		t.Fatalf("another volume must not wait: %v", err)
	}
	other()
	release()
	if r, err := l.acquire("v1"); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		r()
	}
}

func TestDeleteStaticAndRetained(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	// A static volume: a directory an admin made, no record.
	if err := os.MkdirAll(filepath.Join(base, "static", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "local#node-a#static"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "static")); !os.IsNotExist(err) {
		t.Fatalf("static volume with Delete kept its directory: %v", err)
	}
	// onDelete=retain: deleted twice, the data stays; then a new volume of
	// a class that says adoptExisting takes it (bare CSI calls: no namespace).
	p := map[string]string{"backend": "local", "onDelete": "retain", "adoptExisting": "true"}
	vol, err := d.CreateVolume(ctx, createReq("pvc-r", 1, p))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "pvc-r", "data")
	if err := os.WriteFile(data, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: vol.Volume.VolumeId}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(data); err != nil {
			t.Fatalf("delete %d of a retained volume removed its data: %v", i+1, err)
		}
	}
	if _, err := d.CreateVolume(ctx, createReq("pvc-r", 1, p)); err != nil {
		t.Fatalf("adopting a retained directory: %v", err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("adoption lost the data: %v", err)
	}
}

func TestMissingBasePath(t *testing.T) {
	d, base := newLocalDriver(t)
	if err := os.RemoveAll(base); err != nil {
		t.Fatal(err)
	}
	_, err := d.CreateVolume(context.Background(), createReq("pvc-1", 1, map[string]string{"backend": "local"}))
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "--local-base-path") {
		t.Fatalf("create with the base path gone: %v", err)
	}
}
