package driver

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

func (d *Driver) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	}
	id, err := volumeid.Parse(req.GetVolumeId())
	if err != nil {
		// Nothing of ours can be behind an ID we cannot read.
		klog.InfoS("Delete of a volume ID that is not Stowage's; nothing to do", "volumeID", req.GetVolumeId(), "reason", err)
		return &csi.DeleteVolumeResponse{}, nil
	}
	store, release, err := d.lockedStore(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()
	d.copies.stop(id.Where() + "#" + id.Dir) // a restore or clone still filling it

	rec, err := readRecord(ctx, store, id.Dir)
	if err != nil {
		return nil, storeError(err, "read the record of %s", id.Dir)
	}
	if rec == nil {
		return d.deleteUnrecorded(ctx, store, id)
	}
	if err := checkOwner(id, rec, ""); err != nil {
		return nil, err
	}
	switch {
	case rec.Retained:
		return &csi.DeleteVolumeResponse{}, nil
	case rec.OnDelete == params.DeleteRetain:
		rec.Retained = true
		if err := writeRecord(ctx, store, rec); err != nil {
			return nil, storeError(err, "mark %s as retained", id.Dir)
		}
		d.names.forget(volumeid.NameToken(rec.Name))
		klog.InfoS("Keeping the directory of a deleted volume (onDelete=retain)", "volumeID", id.String())
		return &csi.DeleteVolumeResponse{}, nil
	case rec.OnDelete == params.DeleteArchive:
		exists, err := store.Exists(ctx, id.Dir)
		if err != nil {
			return nil, storeError(err, "check %s", id.Dir)
		}
		if exists {
			archived, err := archiveName(ctx, store, id.Dir)
			if err != nil {
				return nil, err
			}
			if err := store.Rename(ctx, id.Dir, archived); err != nil {
				return nil, storeError(err, "archive %s", id.Dir)
			}
			// The archive stays someone's: a tombstone keeps other
			// namespaces from adopting it or the directory around it.
			tomb := *rec
			tomb.Dir, tomb.OnDelete, tomb.Retained = archived, params.DeleteRetain, true
			if err := writeRecord(ctx, store, &tomb); err != nil {
				return nil, storeError(err, "record the archive %s", archived)
			}
			klog.InfoS("Archived the directory of a deleted volume", "volumeID", id.String(), "to", archived)
		}
	default:
		if err := store.RemoveAll(ctx, id.Dir); err != nil {
			return nil, storeError(err, "remove %s", id.Dir)
		}
	}
	if err := store.RemoveRecord(ctx, recordName(id.Dir)); err != nil {
		return nil, storeError(err, "remove the record of %s", id.Dir)
	}
	d.names.forget(volumeid.NameToken(rec.Name))
	klog.V(2).InfoS("Deleted volume", "volumeID", id.String(), "onDelete", rec.OnDelete)
	return &csi.DeleteVolumeResponse{}, nil
}

// archiveName picks archived-<time>-<dir> beside dir, with a counter if a
// directory of that name is there already (the same subDir archived twice
// in one second): a rename never replaces another archive.
func archiveName(ctx context.Context, store backend.Store, dir string) (string, error) {
	name := path.Join(path.Dir(dir), fmt.Sprintf("archived-%s-%s", time.Now().UTC().Format("20060102T150405Z"), path.Base(dir)))
	for i := 1; ; i++ {
		taken, err := store.Exists(ctx, name)
		if err != nil {
			return "", storeError(err, "check %s", name)
		}
		if !taken {
			return name, nil
		}
		if i == 100 {
			return "", status.Errorf(codes.Internal, "could not find a free name to archive %s", dir)
		}
		name = strings.TrimSuffix(name, fmt.Sprintf("-%d", i-1)) + fmt.Sprintf("-%d", i)
	}
}

// deleteUnrecorded handles a directory without a record. For a volume
// Stowage made, the record was there before the directory, so a missing
// record with the directory present means the proof of ownership is lost:
// nothing is removed. A static PV (a handle an admin wrote) with reclaim
// policy Delete asks for its directory to go, unless it holds other volumes.
func (d *Driver) deleteUnrecorded(ctx context.Context, store backend.Store, id volumeid.ID) (*csi.DeleteVolumeResponse, error) {
	exists, err := store.Exists(ctx, id.Dir)
	if err != nil {
		return nil, storeError(err, "check %s", id.Dir)
	}
	switch {
	case !exists:
		// Never made, or already removed by an earlier try.
		return &csi.DeleteVolumeResponse{}, nil
	case id.Owned() && id.OnDelete == params.DeleteRetain:
		return &csi.DeleteVolumeResponse{}, nil // kept, as asked
	case id.Owned():
		return nil, checkOwner(id, nil, "")
	}
	if err := checkNotNested(ctx, store, id, true); err != nil {
		return nil, err
	}
	if err := store.RemoveAll(ctx, id.Dir); err != nil {
		return nil, storeError(err, "remove %s", id.Dir)
	}
	klog.InfoS("Deleted the directory of a static volume", "volumeID", id.String())
	return &csi.DeleteVolumeResponse{}, nil
}

// ScrubVolume empties a volume for Recycle and gives its directory back the
// owner, mode and ACLs of a fresh volume. pvName, when set, is the PV being
// recycled: the volume's record must name it.
func (d *Driver) ScrubVolume(ctx context.Context, volumeID, pvName string) error {
	id, err := volumeid.Parse(volumeID)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	store, release, err := d.lockedStore(ctx, id)
	if err != nil {
		return err
	}
	defer release()
	rec, err := readRecord(ctx, store, id.Dir)
	if err != nil {
		return storeError(err, "read the record of %s", id.Dir)
	}
	if err := checkOwner(id, rec, pvName); err != nil {
		return err
	}
	var mode os.FileMode
	switch {
	case rec == nil:
		// A static volume: it must not hold other volumes.
		if err := checkNotNested(ctx, store, id, true); err != nil {
			return err
		}
	case rec.Retained:
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s holds data kept from deleted volume %s; it is not recycled", id.Dir, id.Where(), rec.Name)
	default:
		mode = rec.DirMode
	}
	if err := store.Scrub(ctx, id.Dir); err != nil {
		return storeError(err, "scrub %s", id.Dir)
	}
	// A static volume keeps what the admin gave its directory.
	if mode != 0 {
		if err := store.Reset(ctx, id.Dir, mode); err != nil {
			return storeError(err, "reset the owner and mode of %s", id.Dir)
		}
	}
	return nil
}
