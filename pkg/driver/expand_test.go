package driver

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

func expandReq(id string, required, limit int64) *csi.ControllerExpandVolumeRequest {
	return &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: required, LimitBytes: limit}}
}

func TestControllerExpandVolume(t *testing.T) {
	d, _ := newLocalDriver(t)
	ctx := context.Background()
	v, err := d.CreateVolume(ctx, createReq("pvc-1", 1<<20, map[string]string{"backend": "local"}))
	if err != nil {
		t.Fatal(err)
	}
	id := v.Volume.VolumeId
	for range 2 { // the second call is a retry: same answer
		r, err := d.ControllerExpandVolume(ctx, expandReq(id, 2<<20, 0))
		if err != nil {
			t.Fatal(err)
		}
		if r.CapacityBytes != 2<<20 || r.NodeExpansionRequired {
			t.Fatalf("expand = %+v, want 2 MiB and no node step", r)
		}
	}
	store, _ := d.store(ctx, mustParse(t, id))
	if rec, err := readRecord(ctx, store, "pvc-1"); err != nil || rec.Capacity != 2<<20 {
		t.Fatalf("record after expand: %+v, %v", rec, err)
	}
	// Less than it has: the volume keeps its size.
	if r, err := d.ControllerExpandVolume(ctx, expandReq(id, 1<<20, 0)); err != nil || r.CapacityBytes != 2<<20 {
		t.Fatalf("expand to less = %+v, %v; want the current 2 MiB", r, err)
	}
	// A limit below the current size would need a shrink.
	if _, err := d.ControllerExpandVolume(ctx, expandReq(id, 1<<20, 1<<20)); code(err) != codes.OutOfRange {
		t.Fatalf("shrink: %v, want OutOfRange", err)
	}
	// More than the base path can give.
	if _, err := d.ControllerExpandVolume(ctx, expandReq(id, 1<<62, 0)); code(err) != codes.ResourceExhausted {
		t.Fatalf("expand past the free space: %v, want ResourceExhausted", err)
	}
	for _, bad := range []string{"", "nonsense", "local#node-a#missing#missing#delete"} {
		if _, err := d.ControllerExpandVolume(ctx, expandReq(bad, 2<<20, 0)); code(err) == codes.OK {
			t.Errorf("expand %q succeeded", bad)
		}
	}
}

// TestCapacityReservesGrants: what a volume was given is no longer offered,
// so claims created together cannot take the same bytes twice.
func TestCapacityReservesGrants(t *testing.T) {
	d, _ := newLocalDriver(t)
	ctx := context.Background()
	params := map[string]string{"backend": "local"}
	before, err := d.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: params})
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	if _, err := d.CreateVolume(ctx, createReq("pvc-1", size, params)); err != nil {
		t.Fatal(err)
	}
	after, err := d.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: params})
	if err != nil {
		t.Fatal(err)
	}
	// Other tests write to the same disk meanwhile: allow some drift.
	if drop := before.AvailableCapacity - after.AvailableCapacity; drop < size-(8<<20) || drop > size+(8<<20) {
		t.Fatalf("available went from %d to %d (drop %d), want a drop of about %d", before.AvailableCapacity, after.AvailableCapacity, drop, size)
	}
	// Asking for everything that is left plus a bit is refused up front.
	_, err = d.CreateVolume(ctx, createReq("pvc-2", after.AvailableCapacity+(16<<20), params))
	if code(err) != codes.ResourceExhausted {
		t.Fatalf("create past the reserved capacity: %v, want ResourceExhausted", err)
	}
	// Another node's segment gets nothing from this node.
	other, err := d.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: params,
		AccessibleTopology: &csi.Topology{Segments: map[string]string{TopologyKey: "node-b"}}})
	if err != nil || other.AvailableCapacity != 0 {
		t.Fatalf("capacity for node-b on node-a: %+v, %v; want 0", other, err)
	}
}

func mustParse(t *testing.T, s string) volumeid.ID {
	t.Helper()
	id, err := volumeid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
