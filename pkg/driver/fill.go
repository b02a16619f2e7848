package driver

import (
	"context"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// A volume made from a snapshot or from another volume (a clone) is filled
// by a tree copy into its own new directory, after its record (Copying, and
// Source naming what it is filled from) and its size limit are in place.
// The copy runs in the background; CreateVolume waits for it while its
// deadline allows and otherwise answers Aborted, and the retry waits again
// (or, after a restart, starts the copy again from an emptied directory).
// The volume is handed out only once its record says the copy is complete.

// fillSource is what a new volume is filled from.
type fillSource struct {
	id   string // the snapshot or volume ID, as the record keeps it
	dir  string // its directory on the same store
	size int64  // the smallest size the new volume may have
	what string // "snapshot x" or "volume y", for messages
}

// contentSource reads the request's content source for volume id: nil for
// an empty volume. It must be on id's root (the same node or share) and
// complete.
func (d *Driver) contentSource(ctx context.Context, store backend.Store, id volumeid.ID, cs *csi.VolumeContentSource) (*fillSource, error) {
	if cs == nil {
		return nil, nil
	}
	if _, ok := store.(backend.Copier); !ok {
		return nil, status.Errorf(codes.InvalidArgument, "%s cannot copy volumes; remove dataSource from the claim", id.Where())
	}
	switch {
	case cs.GetSnapshot() != nil:
		snapID := cs.GetSnapshot().GetSnapshotId()
		snap, err := volumeid.ParseSnapshot(snapID)
		if err != nil {
			return nil, status.Errorf(codes.NotFound, "snapshot %s does not exist: %v", snapID, err)
		}
		if !snap.SameRoot(id) {
			return nil, status.Errorf(codes.InvalidArgument,
				"snapshot %s lives on %s, but the new volume would be on %s; a volume is restored only where its snapshot is (for local volumes: run the pod on node %s; for NFS: use a class with the snapshot's server and share)",
				snap.Name, snap.Where(), id.Where(), snap.Node)
		}
		rec, err := readRecord(ctx, store, snap.Dir())
		if err != nil {
			return nil, storeError(err, "read the record of snapshot %s", snap.Name)
		}
		if rec == nil || volumeid.NameToken(rec.Name) != snap.Name {
			return nil, status.Errorf(codes.NotFound, "snapshot %s does not exist on %s", snap.Name, snap.Where())
		}
		if rec.Copying {
			return nil, status.Errorf(codes.Unavailable, "snapshot %s is not ready yet (its copy is in progress); the volume is made once it is", rec.Name)
		}
		return &fillSource{id: snapID, dir: snap.Dir(), size: rec.Capacity, what: "snapshot " + rec.Name}, nil
	case cs.GetVolume() != nil:
		srcID := cs.GetVolume().GetVolumeId()
		src, err := volumeid.Parse(srcID)
		if err != nil {
			return nil, status.Errorf(codes.NotFound, "source volume %s does not exist: %v", srcID, err)
		}
		if src.Server != id.Server || src.Share != id.Share || src.Node != id.Node || src.Backend != id.Backend {
			return nil, status.Errorf(codes.InvalidArgument,
				"source volume %s is on %s, but the clone would be on %s; a volume is cloned only onto its own node or share", srcID, src.Where(), id.Where())
		}
		rec, err := d.snapshotSource(ctx, store, src)
		if err != nil {
			return nil, err
		}
		if rec.Copying {
			return nil, status.Errorf(codes.Unavailable, "source volume %s is still being filled; the clone is made once it is complete", srcID)
		}
		return &fillSource{id: srcID, dir: src.Dir, size: rec.Capacity, what: "volume " + src.Name}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "the volume content source names neither a snapshot nor a volume")
}

// sourceOf reads a record's Source back into a fillSource (a retried
// CreateVolume, perhaps after a restart).
func sourceOf(rec *record) *fillSource {
	if snap, err := volumeid.ParseSnapshot(rec.Source); err == nil {
		return &fillSource{id: rec.Source, dir: snap.Dir(), what: "snapshot " + snap.Name}
	}
	if src, err := volumeid.Parse(rec.Source); err == nil {
		return &fillSource{id: rec.Source, dir: src.Dir, what: "volume " + src.Name}
	}
	return nil
}

// fill copies src into the new volume id and waits for the copy while ctx
// allows. It returns nil once the record says the volume is complete.
func (d *Driver) fill(ctx context.Context, store backend.Store, id volumeid.ID, rec *record, src *fillSource) error {
	if src == nil {
		return status.Errorf(codes.Internal, "volume %s records an unreadable source %q; delete the claim and make it again", rec.Name, rec.Source)
	}
	copier := store.(backend.Copier) // checked by contentSource, or the record would not say Copying
	key := id.Where() + "#" + id.Dir
	start := time.Now()
	j := d.copies.start(key, d.copyInto(store, copier, src.dir, id.Dir), func(r backend.CopyResult) error {
		done := *rec
		done.Copying = false
		klog.InfoS("Volume filled", "volume", id.String(), "from", src.what, "files", r.Files, "bytes", r.Bytes,
			"reflinked", r.Reflinked, "took", time.Since(start).Round(time.Millisecond))
		return writeRecord(context.Background(), store, &done)
	})
	// Leave a second of the caller's deadline for the answer.
	wait := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithDeadline(ctx, dl.Add(-time.Second))
		defer cancel()
	}
	if !j.wait(wait) {
		return status.Errorf(codes.Aborted, "volume %s is being filled from %s; the copy goes on in the background and the next try finds it further along", rec.Name, src.what)
	}
	if j.err != nil {
		return storeError(j.err, "fill volume %s from %s", rec.Name, src.what)
	}
	return nil
}
