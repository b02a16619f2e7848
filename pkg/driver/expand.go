package driver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// ControllerExpandVolume grows a volume online: the new size is recorded
// (what usage is reported against) and, where the backend enforces sizes,
// the limit is raised at once; nothing is left for the node to do.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	}
	if c := req.GetVolumeCapability(); c != nil && c.GetBlock() != nil {
		return nil, status.Error(codes.InvalidArgument, "block volumes are not supported: Stowage volumes are directories")
	}
	want, err := capacity(req.GetCapacityRange())
	if err != nil {
		return nil, status.Error(codes.OutOfRange, err.Error())
	}
	id, err := volumeid.Parse(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist: %v", req.GetVolumeId(), err)
	}
	store, release, err := d.lockedStore(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()
	rec, err := readRecord(ctx, store, id.Dir)
	if err != nil {
		return nil, storeError(err, "read the record of %s", id.Dir)
	}
	if err := checkOwner(id, rec, ""); err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, status.Errorf(codes.FailedPrecondition,
			"volume %s has no record on %s (a static volume, or one made by an older Stowage): its size is the PV's alone; change the PV's capacity by hand", req.GetVolumeId(), id.Where())
	}
	if rec.Retained {
		return nil, status.Errorf(codes.NotFound, "volume %s was deleted (its data is kept on %s)", req.GetVolumeId(), id.Where())
	}
	if exists, err := store.Exists(ctx, id.Dir); err != nil {
		return nil, storeError(err, "check %s", id.Dir)
	} else if !exists {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist: no directory %s on %s", req.GetVolumeId(), id.Dir, id.Where())
	}
	if lim := req.GetCapacityRange().GetLimitBytes(); lim > 0 && rec.Capacity > lim {
		return nil, status.Errorf(codes.OutOfRange,
			"volume %s has %d bytes, more than the limit %d: volumes never shrink; ask for %d bytes or more", req.GetVolumeId(), rec.Capacity, lim, rec.Capacity)
	}
	if want < rec.Capacity {
		// Asking for less than it has is answered with what it has (CSI:
		// the size is at least the request); shrinking is not offered.
		want = rec.Capacity
	}
	if want > rec.Capacity {
		releaseRoom, err := d.reserveRoom(ctx, id, want-rec.Capacity)
		if err != nil {
			return nil, err
		}
		old := rec.Capacity
		rec.Capacity = want
		err = writeRecord(ctx, store, rec)
		releaseRoom()
		if err != nil {
			return nil, storeError(err, "record the new size of %s", id.Dir)
		}
		klog.V(2).InfoS("Expanded volume", "volumeID", id.String(), "from", old, "to", want)
	}
	// Raised every time, also when the record already says so: a crash
	// between the record and the limit is finished by the retry.
	if _, err := d.backends[id.Backend].Limit(ctx, id, rec.Capacity); err != nil {
		return nil, storeError(err, "limit %s to %d bytes", id.Dir, rec.Capacity)
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: rec.Capacity, NodeExpansionRequired: false}, nil
}
