package driver

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// TestListVolumes pages through the volumes of a node: retained volumes,
// snapshots and deleted volumes are not listed.
func TestListVolumes(t *testing.T) {
	d, _ := newLocalDriver(t)
	ctx := context.Background()
	var want []string
	for _, name := range []string{"pvc-a", "pvc-b", "pvc-c"} {
		resp, err := d.CreateVolume(ctx, createReq(name, 1<<20, map[string]string{"backend": "local"}))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, resp.Volume.VolumeId)
	}
	kept, err := d.CreateVolume(ctx, createReq("pvc-kept", 1<<20, map[string]string{"backend": "local", "onDelete": "retain"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: kept.Volume.VolumeId}); err != nil {
		t.Fatal(err)
	}
	gone, err := d.CreateVolume(ctx, createReq("pvc-gone", 1<<20, map[string]string{"backend": "local"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: gone.Volume.VolumeId}); err != nil {
		t.Fatal(err)
	}
	// A snapshot's record, as CreateSnapshot writes it.
	store, _ := d.store(ctx, volumeid.ID{Backend: volumeid.Local, Node: "node-a"})
	snap := &record{Name: "snap-a", Dir: volumeid.SnapshotsDir + "/snap-a", Source: want[0], Created: time.Now()}
	if err := writeRecord(ctx, store, snap); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)

	var got []string
	token := ""
	for pages := 0; ; pages++ {
		resp, err := d.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatalf("ListVolumes(token %q): %v", token, err)
		}
		if len(resp.Entries) > 2 {
			t.Fatalf("page of %d entries for max_entries 2", len(resp.Entries))
		}
		for _, e := range resp.Entries {
			got = append(got, e.Volume.VolumeId)
			if e.Volume.CapacityBytes != 1<<20 {
				t.Errorf("%s: capacity %d, want %d", e.Volume.VolumeId, e.Volume.CapacityBytes, 1<<20)
			}
			if len(e.Volume.AccessibleTopology) != 1 || e.Volume.AccessibleTopology[0].Segments[TopologyKey] != "node-a" {
				t.Errorf("%s: topology %v, want node-a", e.Volume.VolumeId, e.Volume.AccessibleTopology)
			}
		}
		if token = resp.NextToken; token == "" {
			break
		}
		if pages > 3 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listed %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"invalid-token", "-1", "4"} {
		if _, err := d.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: bad}); code(err) != codes.Aborted {
			t.Errorf("ListVolumes(token %q) = %v, want Aborted", bad, err)
		}
	}
}

// TestVolumeHealth: GetVolume and the health calls tell a volume whose
// directory went missing, or whose record was tampered with, from a healthy
// one, and a deleted or unknown volume is NotFound.
func TestVolumeHealth(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	mk := func(name string, p map[string]string) string {
		p["backend"] = "local"
		resp, err := d.CreateVolume(ctx, createReq(name, 1<<20, p))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Volume.VolumeId
	}
	healthy := mk("pvc-ok", map[string]string{})
	lost := mk("pvc-lost", map[string]string{})
	swapped := mk("pvc-swapped", map[string]string{})
	kept := mk("pvc-kept", map[string]string{"onDelete": "retain"})
	if err := os.RemoveAll(filepath.Join(base, "pvc-lost")); err != nil {
		t.Fatal(err)
	}
	// A record under pvc-swapped's name that names another directory.
	store, _ := d.store(ctx, volumeid.ID{Backend: volumeid.Local, Node: "node-a"})
	b, _ := json.Marshal(&record{Name: "pvc-swapped", Dir: "elsewhere", OnDelete: "delete", Created: time.Now()})
	if err := store.WriteRecord(ctx, recordName("pvc-swapped"), b); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: kept}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		id, reason string
	}{
		{healthy, ""},
		{lost, HealthDirectoryMissing},
		{swapped, HealthRecordMismatch},
	} {
		if _, err := d.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: tc.id}); err != nil {
			t.Errorf("ControllerGetVolume(%s): %v", tc.id, err)
		}
		resp, err := d.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: tc.id})
		if err != nil {
			t.Fatalf("ControllerGetVolumeHealth(%s): %v", tc.id, err)
		}
		h := resp.VolumeHealth.HealthStatuses
		switch {
		case tc.reason == "" && len(h) != 0:
			t.Errorf("%s: health %v, want none", tc.id, h)
		case tc.reason != "" && (len(h) != 1 || h[0].Reason != tc.reason || h[0].Message == ""):
			t.Errorf("%s: health %v, want one entry with reason %s", tc.id, h, tc.reason)
		}
	}
	for _, id := range []string{kept, "local#node-a#never-made#never-made#delete", "not-an-id"} {
		if _, err := d.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: id}); code(err) != codes.NotFound {
			t.Errorf("ControllerGetVolume(%s) = %v, want NotFound", id, err)
		}
	}
	if _, err := d.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{}); code(err) != codes.InvalidArgument {
		t.Errorf("ControllerGetVolumeHealth without an ID = %v, want InvalidArgument", err)
	}

	list, err := d.ControllerListVolumeHealth(ctx, &csi.ControllerListVolumeHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The tampered record is listed under the directory it names (it is
	// stored under another's name), the lost one under its own.
	var reasons []string
	for _, e := range list.Entries {
		for _, h := range e.HealthStatuses {
			reasons = append(reasons, e.VolumeId+" "+h.Reason)
		}
	}
	sort.Strings(reasons)
	wantReasons := []string{"local#node-a#elsewhere#pvc-swapped#delete " + HealthRecordMismatch, lost + " " + HealthDirectoryMissing}
	sort.Strings(wantReasons)
	if len(reasons) != 2 || reasons[0] != wantReasons[0] || reasons[1] != wantReasons[1] {
		t.Errorf("ControllerListVolumeHealth = %v, want %v", reasons, wantReasons)
	}
}
