package driver

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// CSI v1.13 replaced the volume condition of ControllerGetVolume and
// ListVolumes with the VolumeHealth calls: whether a volume's storage agrees
// with its record is answered by ControllerGetVolumeHealth and
// ControllerListVolumeHealth, with these reasons.
const (
	HealthDirectoryMissing = "DirectoryMissing" // the record is there, the directory is not
	HealthRecordMissing    = "RecordMissing"    // the directory is there, its record is not
	HealthRecordMismatch   = "RecordMismatch"   // the record names another directory or volume
)

// ControllerGetVolume answers what the record of a volume says.
//
// Status.PublishedNodeIds stays empty, here and in ListVolumes: Stowage keeps
// no attach state (ControllerPublishVolume only checks the node; the driver
// is stateless), so it could only guess; the VolumeAttachments in the API
// say where a volume is attached. LIST_VOLUMES_PUBLISHED_NODES is therefore
// not advertised.
func (d *Driver) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	v, _, err := d.inspect(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	vol := d.listedVolume(v)
	vol.VolumeId = req.GetVolumeId() // the caller's handle, even an older form of it
	return &csi.ControllerGetVolumeResponse{Volume: vol, Status: &csi.ControllerGetVolumeResponse_VolumeStatus{}}, nil
}

func (d *Driver) ControllerGetVolumeHealth(ctx context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	_, health, err := d.inspect(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: &csi.VolumeHealth{
		VolumeId: req.GetVolumeId(), HealthStatuses: health}}, nil
}

// ControllerListVolumeHealth lists the volumes of ListVolumes whose storage
// disagrees with their record; healthy volumes are not listed, as CSI asks.
func (d *Driver) ControllerListVolumeHealth(ctx context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	vols, err := d.servedVolumes(ctx)
	if err != nil {
		return nil, err
	}
	var sick []*csi.VolumeHealth
	for _, v := range vols {
		health, err := d.health(ctx, v)
		if err != nil {
			return nil, err
		}
		if len(health) > 0 {
			sick = append(sick, &csi.VolumeHealth{VolumeId: v.ID.String(), HealthStatuses: health})
		}
	}
	start, end, next, err := pageBounds(len(sick), req.GetStartingToken(), int(req.GetMaxEntries()))
	if err != nil {
		return nil, err
	}
	return &csi.ControllerListVolumeHealthResponse{Entries: sick[start:end], NextToken: next}, nil
}

// inspect reads the record of a volume and tells what is wrong with it, if
// anything. A volume that does not exist (no record and no directory, a
// retained or deleted one, a snapshot) is NotFound.
func (d *Driver) inspect(ctx context.Context, volumeID string) (StoredVolume, []*csi.VolumeHealth_VolumeHealthEntry, error) {
	if volumeID == "" {
		return StoredVolume{}, nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	}
	id, err := volumeid.Parse(volumeID)
	if err != nil {
		return StoredVolume{}, nil, status.Errorf(codes.NotFound, "volume %s does not exist: %v", volumeID, err)
	}
	store, err := d.store(ctx, id)
	if err != nil {
		return StoredVolume{}, nil, err
	}
	rec, err := readRecordFile(ctx, store, recordName(id.Dir))
	if err != nil {
		return StoredVolume{}, nil, storeError(err, "read the record of %s on %s", id.Dir, id.Where())
	}
	v := StoredVolume{ID: id, Name: id.Name}
	switch {
	case rec == nil:
		exists, err := store.Exists(ctx, id.Dir)
		if err != nil {
			return v, nil, storeError(err, "check %s on %s", id.Dir, id.Where())
		}
		if !exists {
			return v, nil, status.Errorf(codes.NotFound, "volume %s does not exist: neither directory %s nor its record is on %s", volumeID, id.Dir, id.Where())
		}
		if !id.Owned() {
			return v, nil, nil // a static volume: its directory is all there is
		}
		return v, unhealthy(csi.VolumeHealthErrorType_DEGRADED, HealthRecordMissing, fmt.Sprintf(
			"the record of directory %s on %s is missing, so Stowage cannot prove the directory belongs to volume %s; delete and recycle refuse to act on it",
			id.Dir, id.Where(), id.Name)), nil
	case isSnapshotRecord(rec) || rec.Pod != "":
		return v, nil, status.Errorf(codes.NotFound, "volume %s does not exist: directory %s on %s is a snapshot or a pod's inline volume", volumeID, id.Dir, id.Where())
	case rec.Retained:
		return v, nil, status.Errorf(codes.NotFound, "volume %s was deleted; its directory %s on %s is kept (onDelete=%s)", volumeID, id.Dir, id.Where(), rec.OnDelete)
	case rec.Dir != id.Dir:
		return v, unhealthy(csi.VolumeHealthErrorType_DEGRADED, HealthRecordMismatch, fmt.Sprintf(
			"the record of directory %s on %s names directory %q instead: the records directory %s was tampered with; delete and recycle refuse to act until it is repaired",
			id.Dir, id.Where(), rec.Dir, recordDirName)), nil
	}
	v = StoredVolume{ID: id, Name: rec.Name, Namespace: rec.Namespace, Claim: rec.Claim, Capacity: rec.Capacity,
		Created: rec.Created, Params: rec.Params, Copying: rec.Copying, source: rec.Source}
	if err := checkOwner(id, rec, ""); err != nil {
		return v, unhealthy(csi.VolumeHealthErrorType_DEGRADED, HealthRecordMismatch,
			"the record disagrees with this handle: "+status.Convert(err).Message()), nil
	}
	health, err := d.health(ctx, v)
	return v, health, err
}

// health checks a volume whose record was found: recorded under its own
// name, and its directory there.
func (d *Driver) health(ctx context.Context, v StoredVolume) ([]*csi.VolumeHealth_VolumeHealthEntry, error) {
	if v.Misplaced {
		return unhealthy(csi.VolumeHealthErrorType_DEGRADED, HealthRecordMismatch, fmt.Sprintf(
			"the record of directory %s on %s is stored under another directory's name: the records directory %s was tampered with; delete and recycle refuse to act until it is repaired",
			v.ID.Dir, v.ID.Where(), recordDirName)), nil
	}
	store, err := d.store(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	exists, err := store.Exists(ctx, v.ID.Dir)
	if err != nil {
		return nil, storeError(err, "check %s on %s", v.ID.Dir, v.ID.Where())
	}
	if !exists {
		return unhealthy(csi.VolumeHealthErrorType_DATA_LOSS, HealthDirectoryMissing, fmt.Sprintf(
			"directory %s of volume %s is missing on %s although its record is there: it was removed outside Stowage; delete the volume, or recreate the directory to use it empty",
			v.ID.Dir, v.Name, v.ID.Where())), nil
	}
	return nil, nil
}

func unhealthy(t csi.VolumeHealthErrorType, reason, msg string) []*csi.VolumeHealth_VolumeHealthEntry {
	return []*csi.VolumeHealth_VolumeHealthEntry{{Status: t, Reason: reason, Message: msg}}
}
