package driver

import (
	"context"
	"errors"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// A snapshot is a copy of a volume's directory into the root's reserved
// .stowage-snapshots/<name>, made in the background: CreateSnapshot writes
// the snapshot's record (Copying), starts the copy and answers at once with
// ready_to_use=false; the caller asks again until the record says the copy
// is complete. A copy that a restart or an error cut short is started again,
// from an emptied directory, by the next CreateSnapshot: a snapshot is never
// reported ready before all of it is there. Its directory is its own (the
// record names it), lies outside every volume, and nothing reads from it
// but a restore.

func (d *Driver) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	switch {
	case req.GetName() == "":
		return nil, status.Error(codes.InvalidArgument, "snapshot name is missing")
	case req.GetSourceVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "source volume ID is missing")
	}
	src, err := volumeid.Parse(req.GetSourceVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "source volume %s does not exist: %v", req.GetSourceVolumeId(), err)
	}
	snap := volumeid.SnapshotOf(src, req.GetName())
	store, copier, err := d.copierStore(ctx, snap.Root())
	if err != nil {
		return nil, err
	}
	release, err := d.locks.acquire(snap.Where() + "#" + snap.Dir())
	if err != nil {
		return nil, err
	}
	defer release()
	d.roots.add(src)

	rec, err := readRecord(ctx, store, snap.Dir())
	if err != nil {
		return nil, storeError(err, "read the record of snapshot %s", req.GetName())
	}
	if rec != nil {
		if rec.Name != req.GetName() || rec.Source != src.String() {
			return nil, status.Errorf(codes.AlreadyExists,
				"snapshot %s already exists for source volume %s, not %s; a snapshot name always comes with the same source", rec.Name, rec.Source, src)
		}
		return d.snapshotProgress(ctx, store, copier, snap, src, rec)
	}
	srcRec, err := d.snapshotSource(ctx, store, src)
	if err != nil {
		return nil, err
	}
	size := srcRec.Capacity
	releaseRoom, err := d.reserveRoom(ctx, src, size)
	if err != nil {
		return nil, err
	}
	rec = &record{Name: req.GetName(), Dir: snap.Dir(), Capacity: size, Created: time.Now().UTC(),
		Namespace: srcRec.Namespace, Claim: srcRec.Claim, Source: src.String(), Copying: true}
	err = writeRecord(ctx, store, rec)
	releaseRoom()
	if err != nil {
		return nil, storeError(err, "write the record of snapshot %s", req.GetName())
	}
	klog.InfoS("Snapshot started", "snapshot", snap.String(), "source", src.String(), "bytes", size)
	return d.snapshotProgress(ctx, store, copier, snap, src, rec)
}

// snapshotSource checks that the source volume is there and that its
// record (if it has one) names it: a snapshot never copies a directory the
// handle does not own.
func (d *Driver) snapshotSource(ctx context.Context, store backend.Store, src volumeid.ID) (*record, error) {
	rec, err := readRecord(ctx, store, src.Dir)
	if err != nil {
		return nil, storeError(err, "read the record of %s", src.Dir)
	}
	ok, err := store.Exists(ctx, src.Dir)
	if err != nil {
		return nil, storeError(err, "check %s", src.Dir)
	}
	if !ok || (rec != nil && rec.Retained) {
		return nil, status.Errorf(codes.NotFound, "source volume %s does not exist: no directory %s on %s", src, src.Dir, src.Where())
	}
	if err := checkOwner(src, rec, ""); err != nil {
		return nil, err
	}
	if rec == nil {
		rec = &record{Dir: src.Dir} // a static volume: its size is not known
	}
	return rec, nil
}

// snapshotProgress answers for a snapshot whose record exists: ready once
// the record says so, otherwise with its copy running (started again if a
// restart or an error stopped it).
func (d *Driver) snapshotProgress(ctx context.Context, store backend.Store, copier backend.Copier,
	snap volumeid.Snapshot, src volumeid.ID, rec *record) (*csi.CreateSnapshotResponse, error) {
	resp := func(ready bool) *csi.CreateSnapshotResponse {
		return &csi.CreateSnapshotResponse{Snapshot: &csi.Snapshot{
			SnapshotId: snap.String(), SourceVolumeId: src.String(), SizeBytes: rec.Capacity,
			CreationTime: timestamppb.New(rec.Created), ReadyToUse: ready}}
	}
	if !rec.Copying {
		return resp(true), nil
	}
	if _, err := d.snapshotSource(ctx, store, src); err != nil {
		return nil, status.Errorf(status.Code(err), "snapshot %s cannot be completed: %s", rec.Name, status.Convert(err).Message())
	}
	key := snap.Where() + "#" + snap.Dir()
	j := d.copies.start(key, d.copyInto(store, copier, src.Dir, snap.Dir()), func(r backend.CopyResult) error {
		done := *rec
		done.Copying = false
		klog.InfoS("Snapshot ready", "snapshot", snap.String(), "files", r.Files, "bytes", r.Bytes, "reflinked", r.Reflinked)
		return writeRecord(context.Background(), store, &done)
	})
	// A small copy (a reflink, an empty volume) is done by the time the
	// caller would ask again: answer ready at once rather than a poll later.
	waitCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if j.wait(waitCtx) {
		if j.err != nil {
			return nil, storeError(j.err, "copy volume %s into snapshot %s", src.Dir, rec.Name)
		}
		return resp(true), nil
	}
	return resp(false), nil
}

// copyInto returns a copy of src into dst that first empties dst, so that
// a copy started again never mixes with what an earlier attempt left.
func (d *Driver) copyInto(store backend.Store, copier backend.Copier, src, dst string) func(context.Context) (backend.CopyResult, error) {
	return func(ctx context.Context) (backend.CopyResult, error) {
		if err := store.Mkdir(ctx, dst, 0o700); err != nil {
			return backend.CopyResult{}, err
		}
		if err := store.Scrub(ctx, dst); err != nil {
			return backend.CopyResult{}, err
		}
		return copier.CopyTree(ctx, src, dst)
	}
}

// copierStore returns the store of root if it can copy trees.
func (d *Driver) copierStore(ctx context.Context, root volumeid.ID) (backend.Store, backend.Copier, error) {
	store, err := d.store(ctx, root)
	if err != nil {
		return nil, nil, err
	}
	copier, ok := store.(backend.Copier)
	if !ok {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "%s cannot copy volumes, so it has no snapshots or clones", root.Where())
	}
	return store, copier, nil
}

func (d *Driver) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot ID is missing")
	}
	snap, err := volumeid.ParseSnapshot(req.GetSnapshotId())
	if err != nil {
		klog.InfoS("Delete of a snapshot ID that is not Stowage's; nothing to do", "snapshotID", req.GetSnapshotId(), "reason", err)
		return &csi.DeleteSnapshotResponse{}, nil
	}
	store, err := d.store(ctx, snap.Root())
	if err != nil {
		return nil, err
	}
	key := snap.Where() + "#" + snap.Dir()
	release, err := d.locks.acquire(key)
	if err != nil {
		return nil, err
	}
	defer release()
	d.copies.stop(key)
	rec, err := readRecord(ctx, store, snap.Dir())
	if err != nil {
		return nil, storeError(err, "read the record of snapshot %s", snap)
	}
	if rec == nil {
		exists, err := store.Exists(ctx, snap.Dir())
		if err != nil {
			return nil, storeError(err, "check %s", snap.Dir())
		}
		if exists {
			return nil, status.Errorf(codes.FailedPrecondition,
				"snapshot directory %s on %s has no record, so Stowage cannot prove it belongs to snapshot %s; nothing was done. Remove it by hand if it is not needed", snap.Dir(), snap.Where(), snap.Name)
		}
		return &csi.DeleteSnapshotResponse{}, nil
	}
	if volumeid.NameToken(rec.Name) != snap.Name {
		return nil, status.Errorf(codes.FailedPrecondition, "snapshot directory %s on %s belongs to snapshot %s, not %s; nothing was done", snap.Dir(), snap.Where(), rec.Name, snap.Name)
	}
	// Only the snapshot's own directory goes: its source and the volumes
	// restored from it are copies of their own.
	if err := store.RemoveAll(ctx, snap.Dir()); err != nil {
		return nil, storeError(err, "remove %s", snap.Dir())
	}
	if err := store.RemoveRecord(ctx, recordName(snap.Dir())); err != nil && !errors.Is(err, backend.ErrNotFound) {
		return nil, storeError(err, "remove the record of %s", snap.Dir())
	}
	klog.InfoS("Snapshot deleted", "snapshot", snap.String())
	return &csi.DeleteSnapshotResponse{}, nil
}
