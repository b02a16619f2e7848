package driver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// snapshotReady asks for a snapshot until it is ready, as the snapshotter does.
func snapshotReady(t *testing.T, d *Driver, name, source string) *csi.Snapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := d.CreateSnapshot(context.Background(), &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: source})
		if err != nil {
			t.Fatalf("CreateSnapshot(%s): %v", name, err)
		}
		if resp.Snapshot.ReadyToUse {
			return resp.Snapshot
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot %s not ready after 30 s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSnapshotRestoreAndClone(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	p := map[string]string{"backend": "local"}
	src, err := d.CreateVolume(ctx, createReq("pvc-src", 1<<20, p))
	if err != nil {
		t.Fatal(err)
	}
	srcDir := filepath.Join(base, "pvc-src")
	writeFile(t, filepath.Join(srcDir, "a"), "at snapshot time")
	snap := snapshotReady(t, d, "snap-1", src.Volume.VolumeId)
	if snap.SizeBytes != 1<<20 || snap.SourceVolumeId != src.Volume.VolumeId {
		t.Fatalf("snapshot = %+v", snap)
	}
	writeFile(t, filepath.Join(srcDir, "a"), "written after")

	restore := createReq("pvc-restored", 1<<20, p)
	restore.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.SnapshotId}}}
	if _, err := d.CreateVolume(ctx, restore); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := readFile(t, filepath.Join(base, "pvc-restored", "a")); got != "at snapshot time" {
		t.Errorf("restored file says %q", got)
	}
	if _, err := d.CreateVolume(ctx, restore); err != nil {
		t.Errorf("restore again (idempotent): %v", err)
	}

	clone := createReq("pvc-clone", 1<<20, p)
	clone.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.Volume.VolumeId}}}
	if _, err := d.CreateVolume(ctx, clone); err != nil {
		t.Fatalf("clone: %v", err)
	}
	if got := readFile(t, filepath.Join(base, "pvc-clone", "a")); got != "written after" {
		t.Errorf("cloned file says %q", got)
	}

	// Deleting the snapshot leaves its source and what was restored from it.
	for i := 0; i < 2; i++ {
		if _, err := d.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snap.SnapshotId}); err != nil {
			t.Fatalf("DeleteSnapshot #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, volumeid.SnapshotsDir, "snap-1")); !os.IsNotExist(err) {
		t.Errorf("snapshot directory still there: %v", err)
	}
	if readFile(t, filepath.Join(srcDir, "a")) != "written after" || readFile(t, filepath.Join(base, "pvc-restored", "a")) != "at snapshot time" {
		t.Error("deleting the snapshot changed its source or a restored volume")
	}
}

func TestSnapshotRefusals(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	p := map[string]string{"backend": "local"}
	a, err := d.CreateVolume(ctx, createReq("pvc-a", 1<<20, p))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.CreateVolume(ctx, createReq("pvc-b", 1<<20, p))
	if err != nil {
		t.Fatal(err)
	}
	snap := snapshotReady(t, d, "snap-a", a.Volume.VolumeId)
	fromSnap := func(name, snapID string, size, limit int64) *csi.CreateVolumeRequest {
		r := createReq(name, size, p)
		r.CapacityRange.LimitBytes = limit
		r.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}}
		return r
	}
	otherNode := volumeid.Snapshot{Backend: volumeid.Local, Node: "node-b", Name: "snap-a"}.String()
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"same snapshot name, other source", func() error {
			_, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-a", SourceVolumeId: b.Volume.VolumeId})
			return err
		}, codes.AlreadyExists},
		{"source missing", func() error {
			_, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-x", SourceVolumeId: "local#node-a#gone#gone#delete"})
			return err
		}, codes.NotFound},
		{"no name", func() error {
			_, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{SourceVolumeId: a.Volume.VolumeId})
			return err
		}, codes.InvalidArgument},
		{"restore from another node's snapshot", func() error {
			_, err := d.CreateVolume(ctx, fromSnap("pvc-c", otherNode, 1<<20, 0))
			return err
		}, codes.InvalidArgument},
		{"restore from a snapshot that does not exist", func() error {
			_, err := d.CreateVolume(ctx, fromSnap("pvc-d", "snapshot#local#node-a#nope", 1<<20, 0))
			return err
		}, codes.NotFound},
		{"restore smaller than the snapshot", func() error {
			_, err := d.CreateVolume(ctx, fromSnap("pvc-e", snap.SnapshotId, 1<<10, 1<<10))
			return err
		}, codes.OutOfRange},
		{"the same volume name from another source", func() error {
			_, err := d.CreateVolume(ctx, fromSnap("pvc-b", snap.SnapshotId, 1<<20, 0))
			return err
		}, codes.AlreadyExists},
	}
	for _, tt := range tests {
		if err := tt.call(); code(err) != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	// Restoring over an existing directory is refused even where the
	// class adopts existing directories: A's snapshot never lands in B's data.
	if err := os.Mkdir(filepath.Join(base, "pvc-f"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(base, "pvc-f", "mine"), "B's data")
	adopt := fromSnap("pvc-f", snap.SnapshotId, 1<<20, 0)
	adopt.Parameters = map[string]string{"backend": "local", "adoptExisting": "true"}
	if _, err := d.CreateVolume(ctx, adopt); code(err) != codes.FailedPrecondition {
		t.Errorf("restore over an existing directory: %v, want FailedPrecondition", err)
	}
	if readFile(t, filepath.Join(base, "pvc-f", "mine")) != "B's data" {
		t.Error("the existing directory was changed")
	}
	if _, err := os.Stat(filepath.Join(base, "pvc-f", "a")); !os.IsNotExist(err) {
		t.Error("the snapshot was copied into an existing directory")
	}
}

// A copy cut short by a restart is started again from an empty directory:
// what the first attempt left never shows in the snapshot.
func TestSnapshotResumesAfterRestart(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	src, err := d.CreateVolume(ctx, createReq("pvc-src", 1<<20, map[string]string{"backend": "local"}))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(base, "pvc-src", "data"), "real")
	snap := volumeid.SnapshotOf(volumeid.ID{Backend: volumeid.Local, Node: "node-a"}, "snap-r")
	store, err := d.store(ctx, snap.Root())
	if err != nil {
		t.Fatal(err)
	}
	half := &record{Name: "snap-r", Dir: snap.Dir(), Capacity: 1 << 20, Source: src.Volume.VolumeId, Copying: true, Created: time.Now()}
	if err := writeRecord(ctx, store, half); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, snap.Dir()), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(base, snap.Dir(), "partial"), "left by a crash")

	list, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: snap.String()})
	if err != nil || len(list.Entries) != 1 || list.Entries[0].Snapshot.ReadyToUse {
		t.Fatalf("ListSnapshots of a half snapshot = %v, %v; want one, not ready", list, err)
	}
	snapshotReady(t, d, "snap-r", src.Volume.VolumeId)
	if _, err := os.Stat(filepath.Join(base, snap.Dir(), "partial")); !os.IsNotExist(err) {
		t.Error("what the cut-short copy left is still in the snapshot")
	}
	if readFile(t, filepath.Join(base, snap.Dir(), "data")) != "real" {
		t.Error("the resumed snapshot lacks the source's file")
	}
}

func TestListSnapshots(t *testing.T) {
	d, _ := newLocalDriver(t)
	ctx := context.Background()
	p := map[string]string{"backend": "local"}
	a, _ := d.CreateVolume(ctx, createReq("pvc-a", 1<<20, p))
	b, _ := d.CreateVolume(ctx, createReq("pvc-b", 1<<20, p))
	snapshotReady(t, d, "s1", a.Volume.VolumeId)
	snapshotReady(t, d, "s2", a.Volume.VolumeId)
	snapshotReady(t, d, "s3", b.Volume.VolumeId)
	all, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
	if err != nil || len(all.Entries) != 3 {
		t.Fatalf("all = %v, %v; want 3", all, err)
	}
	ofA, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: a.Volume.VolumeId})
	if err != nil || len(ofA.Entries) != 2 {
		t.Fatalf("of pvc-a = %v, %v; want 2", ofA, err)
	}
	first, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: 2})
	if err != nil || len(first.Entries) != 2 || first.NextToken == "" {
		t.Fatalf("page 1 = %v, %v", first, err)
	}
	rest, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: 2, StartingToken: first.NextToken})
	if err != nil || len(rest.Entries) != 1 || rest.NextToken != "" {
		t.Fatalf("page 2 = %v, %v", rest, err)
	}
	if _, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "junk"}); code(err) != codes.Aborted {
		t.Errorf("bad token: %v, want Aborted", err)
	}
	none, err := d.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "not-ours"})
	if err != nil || len(none.Entries) != 0 {
		t.Errorf("foreign ID = %v, %v; want empty", none, err)
	}
}
