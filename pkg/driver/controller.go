package driver

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Context keys written into the PV's volumeAttributes.
const (
	ContextBackend = "backend"
)

var controllerCaps = []csi.ControllerServiceCapability_RPC_Type{
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
	csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csi.ControllerServiceCapability_RPC_GET_VOLUME,
	csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
}

func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, c := range controllerCaps {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: c}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume name is missing")
	}
	p, err := params.Parse(req.GetParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	b, err := d.backend(p.Backend)
	if err != nil {
		return nil, err
	}
	if err := checkCapabilities(b, req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	size, err := capacity(req.GetCapacityRange())
	if err != nil {
		return nil, status.Error(codes.OutOfRange, err.Error())
	}
	name := volumeid.NameToken(req.GetName())
	dir, err := p.VolumeDir(name)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	id := volumeid.ID{Backend: p.Backend, Server: p.Server, Share: p.Share, Node: d.opts.NodeID, Dir: dir, Name: name, OnDelete: p.OnDelete}
	if err := b.Placeable(req.GetAccessibilityRequirements()); err != nil {
		return nil, err
	}
	sum := fingerprint(req.GetParameters())
	if d.names.conflicts(req.GetName(), sum+"|"+id.String()) {
		return nil, status.Errorf(codes.AlreadyExists,
			"volume %s was already created with other parameters; a name must always come with the same parameters", req.GetName())
	}
	store, release, err := d.lockedStore(ctx, id)
	if err != nil {
		return nil, err
	}
	defer release()

	src, err := d.contentSource(ctx, store, id, req.GetVolumeContentSource())
	if err != nil {
		return nil, err
	}
	if src != nil && size < src.size {
		if limit := req.GetCapacityRange().GetLimitBytes(); limit > 0 && limit < src.size {
			return nil, status.Errorf(codes.OutOfRange, "%s holds %d bytes, more than the limit of %d asked for; ask for at least its size", src.what, src.size, limit)
		}
		size = src.size
	}
	rec, err := readRecord(ctx, store, dir)
	if err != nil {
		return nil, storeError(err, "read the record of %s", dir)
	}
	if rec != nil && !rec.Retained {
		return d.createdBefore(ctx, store, id, rec, req, p, sum, src)
	}
	if rec != nil && (!p.Adopt || rec.Namespace != p.PVCNS) {
		return nil, status.Errorf(codes.FailedPrecondition,
			"directory %s on %s holds the data kept (onDelete=retain) from deleted volume %s%s; it is given to a new claim only of the same namespace and only by a class with adoptExisting: \"true\". Use another subDir, or move the data away",
			dir, id.Where(), rec.Name, ofClaim(rec))
	}
	if err := checkNotNested(ctx, store, id, false); err != nil {
		return nil, err
	}
	existed, empty, err := store.Empty(ctx, dir)
	if err != nil {
		return nil, storeError(err, "check %s", dir)
	}
	if existed && rec == nil && !p.Adopt {
		what := "holds data"
		if empty {
			what = "is empty"
		}
		return nil, status.Errorf(codes.FailedPrecondition,
			"directory %s already exists on %s (it %s) and no Stowage volume owns it; Stowage never takes over an existing directory by its name. Remove or rename it, give the class a subDir template that is unique per claim, or let an admin adopt it (a static PV, or adoptExisting: \"true\" on the class)",
			dir, id.Where(), what)
	}
	if existed && src != nil {
		return nil, status.Errorf(codes.FailedPrecondition,
			"directory %s already exists on %s; a volume made from %s is always made in a new directory, never over an existing one", dir, id.Where(), src.what)
	}
	if existed {
		// Taking over a directory: it must not hold other volumes, nor
		// be the root of another class's share.
		if err := checkNotNested(ctx, store, id, true); err != nil {
			return nil, err
		}
		if other, err := store.Exists(ctx, path.Join(dir, recordDirName)); err != nil || other {
			return nil, status.Errorf(codes.FailedPrecondition,
				"directory %s on %s holds another share's volumes (%s); nothing was done", dir, id.Where(), recordDirName)
		}
	}
	releaseRoom, err := d.reserveRoom(ctx, id, size)
	if err != nil {
		return nil, err
	}
	// Write the record first: if we crash after it, a retry finds it and
	// finishes; DeleteVolume can always find what to clean up. It is also
	// the grant that later capacity checks count.
	rec = &record{Name: req.GetName(), Dir: dir, Capacity: size, OnDelete: p.OnDelete, Created: time.Now().UTC(),
		Namespace: p.PVCNS, Claim: p.PVCName, DirMode: p.DirMode, Params: sum}
	if src != nil {
		rec.Source, rec.Copying = src.id, true
	}
	err = writeRecord(ctx, store, rec)
	releaseRoom()
	if err != nil {
		return nil, storeError(err, "write the record of %s", dir)
	}
	made, err := makeVolumeDir(ctx, store, dir, p.DirMode)
	if err != nil {
		d.undoCreate(ctx, store, dir, true)
		return nil, storeError(err, "create %s", dir)
	}
	// Look again now that our record is written and our directory made: a
	// volume created around or inside this one at the same time does the
	// same, so of two racing creates at least one sees the other and backs
	// off. What the other made is left alone; only our record goes.
	if err := d.checkAfterMkdir(ctx, store, id, existed, made); err != nil {
		d.undoCreate(ctx, store, dir, true)
		return nil, err
	}
	if _, err := b.Limit(ctx, id, size); err != nil {
		d.undoCreate(ctx, store, dir, existed)
		return nil, storeError(err, "limit %s to %d bytes", dir, size)
	}
	if src != nil {
		if err := d.fill(ctx, store, id, rec, src); err != nil {
			if status.Code(err) != codes.Aborted { // Aborted: still copying, the retry waits again
				d.copies.stop(id.Where() + "#" + id.Dir)
				d.undoCreate(ctx, store, dir, false)
			}
			return nil, err
		}
	}
	if existed {
		klog.InfoS("Adopted an existing directory for a new volume (adoptExisting)", "volume", req.GetName(), "dir", dir, "at", id.Where())
	}
	d.names.remember(req.GetName(), sum+"|"+id.String())
	d.roots.add(id)
	klog.V(2).InfoS("Created volume", "volumeID", id.String(), "bytes", size)
	v := d.volume(id, size, req.GetVolumeCapabilities())
	v.ContentSource = req.GetVolumeContentSource()
	return &csi.CreateVolumeResponse{Volume: v}, nil
}

// checkAfterMkdir repeats the nesting checks once the record and the
// directory exist; made says this call's mkdir made it (makeVolumeDir).
func (d *Driver) checkAfterMkdir(ctx context.Context, store backend.Store, id volumeid.ID, existed, made bool) error {
	if err := checkNotNested(ctx, store, id, existed); err != nil {
		return err
	}
	if existed || made {
		return nil // adopted: the records were read again just above; made: empty after our record
	}
	_, empty, err := store.Empty(ctx, id.Dir)
	if err != nil {
		return storeError(err, "check %s", id.Dir)
	}
	if !empty {
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s filled up while it was being created (another volume made inside it at the same time); nothing was done, retry", id.Dir, id.Where())
	}
	return nil
}

// createdBefore answers a CreateVolume for a directory whose record already
// exists: a retry of the same call (finish what a crash left) or a clash.
func (d *Driver) createdBefore(ctx context.Context, store backend.Store, id volumeid.ID, rec *record,
	req *csi.CreateVolumeRequest, p params.Params, sum string, src *fillSource) (*csi.CreateVolumeResponse, error) {
	if rec.Name != req.GetName() {
		return nil, status.Errorf(codes.AlreadyExists,
			"directory %s already holds volume %s%s; make the StorageClass subDir template unique per claim (for example include ${pv.name})", id.Dir, rec.Name, ofClaim(rec))
	}
	if rec.Params != "" && rec.Params != sum {
		return nil, status.Errorf(codes.AlreadyExists,
			"volume %s already exists with other parameters; a name must always come with the same parameters", req.GetName())
	}
	if rec.Capacity < req.GetCapacityRange().GetRequiredBytes() ||
		(req.GetCapacityRange().GetLimitBytes() > 0 && rec.Capacity > req.GetCapacityRange().GetLimitBytes()) {
		return nil, status.Errorf(codes.AlreadyExists,
			"volume %s already exists with %d bytes, which does not fit the requested range", req.GetName(), rec.Capacity)
	}
	if (src == nil && rec.Source != "") || (src != nil && src.id != rec.Source) {
		return nil, status.Errorf(codes.AlreadyExists,
			"volume %s already exists with another content source (%q); a name must always come with the same source", req.GetName(), rec.Source)
	}
	id.OnDelete = rec.OnDelete
	// A crash may have left the record without its directory or its limit.
	if err := store.Mkdir(ctx, id.Dir, p.DirMode); err != nil {
		return nil, storeError(err, "create %s", id.Dir)
	}
	if _, err := d.backends[id.Backend].Limit(ctx, id, rec.Capacity); err != nil {
		return nil, storeError(err, "limit %s to %d bytes", id.Dir, rec.Capacity)
	}
	if rec.Copying {
		if err := d.fill(ctx, store, id, rec, sourceOf(rec)); err != nil {
			return nil, err
		}
	}
	d.names.remember(req.GetName(), sum+"|"+id.String())
	d.roots.add(id)
	v := d.volume(id, rec.Capacity, req.GetVolumeCapabilities())
	v.ContentSource = req.GetVolumeContentSource()
	return &csi.CreateVolumeResponse{Volume: v}, nil
}

// undoCreate removes what a failed CreateVolume made, so nothing half-made
// is left behind; a directory that existed before is left as it was.
func (d *Driver) undoCreate(ctx context.Context, store backend.Store, dir string, existed bool) {
	if !existed {
		if err := store.RemoveAll(ctx, dir); err != nil {
			klog.ErrorS(err, "Cleaning up after a failed create", "dir", dir)
		}
	}
	if err := store.RemoveRecord(ctx, recordName(dir)); err != nil {
		klog.ErrorS(err, "Cleaning up the record after a failed create", "dir", dir)
	}
}

func (d *Driver) volume(id volumeid.ID, size int64, caps []*csi.VolumeCapability) *csi.Volume {
	v := &csi.Volume{
		VolumeId:      id.String(),
		CapacityBytes: size,
		VolumeContext: map[string]string{ContextBackend: id.Backend},
	}
	// The node plugin reads the modes the volume was made for: kubelet
	// passes only the first, which hides a ReadOnlyMany-only claim bound to
	// a recycled [ReadWriteMany, ReadOnlyMany] volume.
	if modes := accessModesContext(caps); modes != "" {
		v.VolumeContext[ContextAccessModes] = modes
	}
	v.AccessibleTopology = d.backends[id.Backend].Topology(id)
	return v
}

func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities are missing")
	}
	id, err := d.existingVolume(ctx, req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	if err := checkCapabilities(d.backends[id.Backend], req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// publishedVolume checks the fields every publish call needs and parses
// the volume ID; an ID that is not Stowage's names no existing volume.
func (d *Driver) publishedVolume(volumeID, where, whereName string, c *csi.VolumeCapability) (volumeid.ID, error) {
	switch {
	case volumeID == "":
		return volumeid.ID{}, status.Error(codes.InvalidArgument, "volume ID is missing")
	case where == "":
		return volumeid.ID{}, status.Errorf(codes.InvalidArgument, "%s is missing", whereName)
	case c == nil:
		return volumeid.ID{}, status.Error(codes.InvalidArgument, "volume capability is missing")
	}
	id, err := volumeid.Parse(volumeID)
	if err != nil {
		return id, status.Errorf(codes.NotFound, "volume %s does not exist: %v", volumeID, err)
	}
	b, err := d.backend(id.Backend)
	if err != nil {
		return id, status.Errorf(codes.NotFound, "volume %s: %v", volumeID, status.Convert(err).Message())
	}
	return id, checkCapability(b, c)
}

// existingVolume parses an ID and checks that its directory is there.
func (d *Driver) existingVolume(ctx context.Context, volumeID string) (volumeid.ID, error) {
	id, err := volumeid.Parse(volumeID)
	if err != nil {
		return id, status.Errorf(codes.NotFound, "volume %s does not exist: %v", volumeID, err)
	}
	store, err := d.store(ctx, id)
	if err != nil {
		return id, err
	}
	ok, err := store.Exists(ctx, id.Dir)
	if err != nil {
		return id, storeError(err, "check %s", id.Dir)
	}
	if !ok {
		return id, status.Errorf(codes.NotFound, "volume %s does not exist: no directory %s on %s", volumeID, id.Dir, id.Where())
	}
	return id, nil
}

// lockedStore returns the volume's Store with the volume locked against
// other operations; the caller must call release.
func (d *Driver) lockedStore(ctx context.Context, id volumeid.ID) (backend.Store, func(), error) {
	store, err := d.store(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	// Keyed by the directory, not the volume ID: two volumes whose
	// templates give one directory must not run their checks side by side.
	release, err := d.locks.acquire(id.Where() + "#" + id.Dir)
	if err != nil {
		return nil, nil, err
	}
	return store, release, nil
}

// store returns the Store that holds the volume, or a status error that
// says why this instance cannot reach it.
func (d *Driver) store(ctx context.Context, id volumeid.ID) (backend.Store, error) {
	b, err := d.backend(id.Backend)
	if err != nil {
		return nil, err
	}
	return b.Store(ctx, id)
}

// storeError maps a backend error to a gRPC status with context.
func storeError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...) + ": " + err.Error()
	switch {
	case errors.Is(err, backend.ErrNoSpace):
		return status.Error(codes.ResourceExhausted, msg+"; free space on the storage or ask for a smaller volume")
	case errors.Is(err, backend.ErrNotFound):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, backend.ErrOtherFilesystem), errors.Is(err, backend.ErrOtherStore):
		// Left on purpose: something mounted, or another store, inside.
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return status.Error(codes.DeadlineExceeded, msg)
	}
	return status.Error(codes.Internal, msg)
}
