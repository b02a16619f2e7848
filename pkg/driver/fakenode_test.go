package driver

import (
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// TestNodePublishReadWriteOncePodFake: with a fake mounter, a second target
// of a ReadWriteOncePod volume is refused and its mount undone; the first
// target's retry still succeeds; once unpublished, the second may publish.
func TestNodePublishReadWriteOncePodFake(t *testing.T) {
	d, fake := newFakeNode(t, nil)
	ctx := context.Background()
	first, second := kubeletTarget(t, "pv-1"), kubeletTarget(t, "pv-1")
	pub := func(target string) error {
		_, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId: nfsVolume, TargetPath: target,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER),
		})
		return err
	}
	if err := pub(first); err != nil {
		t.Fatal(err)
	}
	err := pub(second)
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), first) {
		t.Fatalf("second target: %v, want FailedPrecondition naming %s", err, first)
	}
	for _, m := range fake.MountPoints {
		if m.Path == second {
			t.Fatalf("the refused target is still mounted: %+v", fake.MountPoints)
		}
	}
	if err := pub(first); err != nil {
		t.Fatalf("retry on the first target: %v", err)
	}
	if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: nfsVolume, TargetPath: first}); err != nil {
		t.Fatal(err)
	}
	if err := pub(second); err != nil {
		t.Fatalf("second target after the first was unpublished: %v", err)
	}
}

// TestNodePublishReadOnlyModesFake: every read-only access mode mounts with
// "ro" whatever the request's readonly flag says, and a writable mode
// mounts without it unless the pod asks.
func TestNodePublishReadOnlyModesFake(t *testing.T) {
	tests := []struct {
		mode     csi.VolumeCapability_AccessMode_Mode
		readonly bool
		wantRO   bool
	}{
		{csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, false, true},
		{csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, false, true},
		{csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, false, false},
		{csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, true, true},
		{csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false, false},
	}
	for _, tt := range tests {
		d, fake := newFakeNode(t, nil)
		target := kubeletTarget(t, "pv-1")
		if _, err := d.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
			VolumeId: nfsVolume, TargetPath: target, Readonly: tt.readonly, VolumeCapability: mountCap(tt.mode),
		}); err != nil {
			t.Fatalf("%v: %v", tt.mode, err)
		}
		if len(fake.MountPoints) != 1 {
			t.Fatalf("%v: mounts %+v, want one", tt.mode, fake.MountPoints)
		}
		ro := false
		for _, o := range fake.MountPoints[0].Opts {
			ro = ro || o == "ro"
		}
		if ro != tt.wantRO {
			t.Errorf("%v readonly=%v: mounted with %v, want ro=%v", tt.mode, tt.readonly, fake.MountPoints[0].Opts, tt.wantRO)
		}
	}
}

// TestNodePublishUnservedBackendFake: the fake node serves NFS only, so
// a local volume is refused before anything is mounted.
func TestNodePublishUnservedBackendFake(t *testing.T) {
	d, fake := newFakeNode(t, nil)
	_, err := d.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{
		VolumeId: localID("vol"), TargetPath: kubeletTarget(t, "pv-1"),
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
	})
	if code(err) != codes.NotFound || len(fake.GetLog()) != 0 {
		t.Fatalf("got %v with mounts %+v, want NotFound and nothing mounted", err, fake.GetLog())
	}
}
