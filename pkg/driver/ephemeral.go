package driver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Inline ephemeral volumes: a pod names `csi: {driver: csi.stowage.io,
// volumeAttributes: {size: 1Gi}}` and gets size-limited scratch space on its
// node's local disk that lives exactly as long as the pod. There is no
// CreateVolume: kubelet makes up the volume ID (csi-<sha256 of pod UID and
// volume name>) and calls NodePublishVolume with the pod's details in the
// volume context (the CSIDriver's podInfoOnMount), then NodeUnpublishVolume
// when the pod goes. The volume is made and removed in those two calls, with
// the same record-first rule as CreateVolume, so a directory under
// ephemeralRoot is only ever removed for the volume its record names.

// Volume context keys of an inline volume. Kubelet adds the
// csi.storage.k8s.io/ ones; size is the user's.
const (
	ContextEphemeral = "csi.storage.k8s.io/ephemeral"
	ContextPodName   = "csi.storage.k8s.io/pod.name"
	ContextPodNS     = "csi.storage.k8s.io/pod.namespace"
	ContextPodUID    = "csi.storage.k8s.io/pod.uid"
	ContextPodSA     = "csi.storage.k8s.io/serviceAccount.name"
	EphemeralSize    = "size"
)

// ephemeralRoot is the directory under the local base path that holds the
// inline volumes, one directory per volume ID.
const ephemeralRoot = "ephemeral"

// inlineParams stands in the record for class parameters, which inline
// volumes do not have.
const inlineParams = "inline"

// ephemeralDirMode lets any user of the pod write, as an emptyDir does.
const ephemeralDirMode os.FileMode = 0o777

// kubeletKeys are what kubelet may add to an inline volume's attributes.
var kubeletKeys = map[string]bool{ContextEphemeral: true, ContextPodName: true, ContextPodNS: true, ContextPodUID: true, ContextPodSA: true}

// inlineRequest is what an inline volume's attributes ask for.
type inlineRequest struct {
	size             int64
	pod, podNS, name string // pod UID, namespace and name
}

// parseInline checks an inline volume's attributes. Size may be left out
// (DefaultCapacity, as for a claim without a size); any key the user wrote
// other than size is refused, so a typo never silently gives the default.
func parseInline(attrs map[string]string) (inlineRequest, error) {
	var r inlineRequest
	var unknown []string
	for k := range attrs {
		if k != EphemeralSize && !kubeletKeys[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return r, status.Errorf(codes.InvalidArgument,
			"inline volume attribute %s is not known; an inline Stowage volume takes only size (for example size: 1Gi) and always lives on the node's local disk",
			strings.Join(unknown, ", "))
	}
	r.pod, r.podNS, r.name = attrs[ContextPodUID], attrs[ContextPodNS], attrs[ContextPodName]
	if r.pod == "" {
		return r, status.Errorf(codes.InvalidArgument, "inline volume without %s; kubelet sends it when the CSIDriver has podInfoOnMount: true", ContextPodUID)
	}
	r.size = DefaultCapacity
	if s, ok := attrs[EphemeralSize]; ok {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return r, status.Errorf(codes.InvalidArgument, "inline volume attribute size=%q is not a Kubernetes quantity; write it like 64Mi or 1Gi", s)
		}
		if q.Sign() <= 0 {
			return r, status.Errorf(codes.InvalidArgument, "inline volume attribute size=%q must be more than zero", s)
		}
		r.size = q.Value()
	}
	return r, nil
}

// isInline reports whether a publish is of an inline volume, or refuses one
// that cannot be served (kubelet sends no pod details without
// podInfoOnMount, so a volume ID of kubelet's is the only sign).
func isInline(req *csi.NodePublishVolumeRequest) (bool, error) {
	if req.GetVolumeContext()[ContextEphemeral] == "true" {
		return true, nil
	}
	if _, err := volumeid.Parse(req.GetVolumeId()); err != nil && strings.HasPrefix(req.GetVolumeId(), "csi-") && req.GetVolumeContext()[ContextBackend] == "" {
		return false, status.Errorf(codes.FailedPrecondition,
			"volume %s looks like an inline volume, but kubelet did not say so: the CSIDriver object needs podInfoOnMount: true and volumeLifecycleModes [Persistent, Ephemeral] (install the current chart; volumeLifecycleModes cannot be changed on an existing CSIDriver, delete it first)", req.GetVolumeId())
	}
	return false, nil
}

// inlineID is the local volume an inline volume ID stands for on this node.
func (d *Driver) inlineID(volumeID string) volumeid.ID {
	tok := volumeid.NameToken(volumeID)
	return volumeid.ID{Backend: volumeid.Local, Node: d.opts.NodeID, Dir: ephemeralRoot + "/" + tok, Name: tok, OnDelete: params.DeleteRemove}
}

// nodeVolumeID reads a volume ID given to the Node service: a Stowage ID, or
// an inline volume's (any ID that is not Stowage's).
func (d *Driver) nodeVolumeID(volumeID string) (volumeid.ID, error) {
	id, err := volumeid.Parse(volumeID)
	if err == nil || d.backends[volumeid.Local] == nil || volumeID == "" {
		return id, err
	}
	return d.inlineID(volumeID), nil
}

// publishInline makes an inline volume (record, directory, quota) if it is
// not there yet and binds it on the target.
func (d *Driver) publishInline(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	volumeID, target := req.GetVolumeId(), req.GetTargetPath()
	switch {
	case volumeID == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "target path is missing")
	}
	in, err := parseInline(req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	b, err := d.backend(volumeid.Local)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "inline volumes live on the node's local disk: %v", status.Convert(err).Message())
	}
	if err := checkCapability(b, req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	id := d.inlineID(volumeID)
	release, err := d.locks.acquire(volumeID + "@" + target)
	if err != nil {
		return nil, err
	}
	defer release()

	// The target first: a record always has its target until unpublish,
	// which is what the sweep goes by.
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "create target %s: %v", target, err)
	}
	mounted, err := d.opts.Mounter.IsMountPoint(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "check target %s: %v", target, err)
	}
	if err := d.makeInline(ctx, b, id, volumeID, target, in); err != nil {
		return nil, err
	}
	if mounted {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	readOnly := req.GetReadonly() || readOnlyMode(req.GetVolumeCapability())
	if err := b.Mount(ctx, id, target, nil, readOnly); err != nil {
		return nil, err // the record stays: a retry binds, an unpublish removes
	}
	klog.V(2).InfoS("Published inline volume", "volumeID", volumeID, "pod", klog.KRef(in.podNS, in.name), "dir", id.Dir, "bytes", in.size)
	return &csi.NodePublishVolumeResponse{}, nil
}

// makeInline writes the record, makes the directory and sets its quota; for
// a volume whose record is there already it checks the record is its own
// and finishes what a crash may have left.
func (d *Driver) makeInline(ctx context.Context, b backend.Backend, id volumeid.ID, volumeID, target string, in inlineRequest) error {
	store, err := b.Store(ctx, id)
	if err != nil {
		return err
	}
	rec, err := readRecord(ctx, store, id.Dir)
	if err != nil {
		return storeError(err, "read the record of %s", id.Dir)
	}
	if rec != nil {
		if rec.Name != volumeID || rec.Pod != in.pod {
			return status.Errorf(codes.FailedPrecondition,
				"directory %s on %s belongs to volume %s of pod %s, not to %s of pod %s; nothing was done", id.Dir, id.Where(), rec.Name, rec.Pod, volumeID, in.pod)
		}
		if err := store.Mkdir(ctx, id.Dir, ephemeralDirMode); err != nil {
			return storeError(err, "create %s", id.Dir)
		}
		if _, err := b.Limit(ctx, id, rec.Capacity); err != nil {
			return storeError(err, "limit %s to %d bytes", id.Dir, rec.Capacity)
		}
		return nil
	}
	if err := checkNotNested(ctx, store, id, false); err != nil {
		return err
	}
	if exists, err := store.Exists(ctx, id.Dir); err != nil || exists {
		if err != nil {
			return storeError(err, "check %s", id.Dir)
		}
		return status.Errorf(codes.FailedPrecondition,
			"directory %s already exists on %s and no record says whose it is; Stowage never takes over a directory it cannot prove is this volume's. Remove it by hand", id.Dir, id.Where())
	}
	releaseRoom, err := d.reserveRoom(ctx, id, in.size)
	if err != nil {
		return err
	}
	rec = &record{Name: volumeID, Dir: id.Dir, Capacity: in.size, OnDelete: params.DeleteRemove, Created: time.Now().UTC(),
		Namespace: in.podNS, Claim: "pod " + in.name, DirMode: ephemeralDirMode, Pod: in.pod, Target: target,
		// Set, so that a static PV handle naming the directory is refused (checkOwner).
		Params: inlineParams}
	err = writeRecord(ctx, store, rec)
	releaseRoom()
	if err != nil {
		return storeError(err, "write the record of %s", id.Dir)
	}
	if err := store.Mkdir(ctx, id.Dir, ephemeralDirMode); err != nil {
		d.undoCreate(ctx, store, id.Dir, false)
		return storeError(err, "create %s", id.Dir)
	}
	if _, err := b.Limit(ctx, id, in.size); err != nil {
		d.undoCreate(ctx, store, id.Dir, false)
		return storeError(err, "limit %s to %d bytes", id.Dir, in.size)
	}
	return nil
}

// unpublishInline removes an inline volume once its target is unmounted.
// An ID without a record under ephemeralRoot is not an inline volume, or is
// one already removed: nothing to do. The caller holds the target's lock.
func (d *Driver) unpublishInline(ctx context.Context, volumeID, target string) error {
	b := d.backends[volumeid.Local]
	if b == nil || volumeID == "" {
		return nil
	}
	if _, err := volumeid.Parse(volumeID); err == nil {
		return nil // a Stowage volume, made and removed by the controller
	}
	id := d.inlineID(volumeID)
	store, err := inlineStore(ctx, b, id)
	if err != nil || store == nil {
		return err
	}
	rec, err := readRecord(ctx, store, id.Dir)
	if err != nil {
		return storeError(err, "read the record of %s", id.Dir)
	}
	if rec == nil {
		return nil
	}
	if rec.Name != volumeID || (rec.Target != "" && rec.Target != target) {
		klog.InfoS("Not removing an inline volume unpublished from a target that is not its own", "volumeID", volumeID, "target", target, "recordTarget", rec.Target)
		return nil
	}
	return d.removeInline(ctx, store, id, rec)
}

// inlineStore is the local store, or nil where this node has no local base
// path (it never made an inline volume then); an error where the base path
// is there but not usable, so that kubelet retries.
func inlineStore(ctx context.Context, b backend.Backend, id volumeid.ID) (backend.Store, error) {
	store, err := b.Store(ctx, id)
	if err != nil && b.Ready() == nil {
		return nil, nil
	}
	return store, err
}

func (d *Driver) removeInline(ctx context.Context, store backend.Store, id volumeid.ID, rec *record) error {
	if err := store.RemoveAll(ctx, id.Dir); err != nil {
		return storeError(err, "remove inline volume %s (%s)", rec.Name, id.Dir)
	}
	if err := store.RemoveRecord(ctx, recordName(id.Dir)); err != nil {
		return storeError(err, "remove the record of %s", id.Dir)
	}
	d.stats.forget(id.String(), rec.Target)
	klog.V(2).InfoS("Removed inline volume", "volumeID", rec.Name, "dir", id.Dir, "podUID", rec.Pod)
	return nil
}

// SweepInline removes the inline volumes whose pods are gone: those whose
// target kubelet has removed. Kubelet removes a target only after a
// successful NodeUnpublishVolume, so it will never ask again; a node plugin
// that was down or restarting at that moment would otherwise leave the
// directory forever. A target that is still there, mounted or not, belongs
// to a pod kubelet still knows (after a reboot it publishes it again), and
// a directory without a record is never touched.
func (d *Driver) SweepInline(ctx context.Context) (removed int, err error) {
	b := d.backends[volumeid.Local]
	if b == nil || !d.isNode() {
		return 0, nil
	}
	root := volumeid.ID{Backend: volumeid.Local, Node: d.opts.NodeID}
	store, err := inlineStore(ctx, b, root)
	if err != nil || store == nil {
		return 0, err
	}
	recs, err := allRecords(ctx, store)
	if err != nil {
		return 0, storeError(err, "read the records on %s", root.Where())
	}
	var errs []error
	for _, rec := range recs {
		if rec.Pod == "" || !strings.HasPrefix(rec.Dir, ephemeralRoot+"/") || rec.Target == "" {
			continue
		}
		gone, err := d.sweepInlineOne(ctx, store, rec)
		if err != nil {
			errs = append(errs, err)
		} else if gone {
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

func (d *Driver) sweepInlineOne(ctx context.Context, store backend.Store, rec *record) (bool, error) {
	release, err := d.locks.acquire(rec.Name + "@" + rec.Target)
	if err != nil {
		return false, nil // being published or unpublished right now
	}
	defer release()
	id := d.inlineID(rec.Name)
	if id.Dir != rec.Dir {
		return false, nil // not a record this code wrote
	}
	// Only where kubelet's pods directory is visible can a missing target
	// mean anything: a node plugin that does not see it must not guess.
	if podsDir := podsDirOf(rec.Target); podsDir == "" || !isDir(podsDir) {
		return false, nil
	}
	if _, err := os.Lstat(rec.Target); !errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	klog.InfoS("Removing an inline volume whose pod is gone", "volumeID", rec.Name, "podUID", rec.Pod, "target", rec.Target)
	return true, d.removeInline(ctx, store, id, rec)
}

// podsDirOf returns kubelet's pods directory from a target path laid out as
// <kubelet root>/pods/<pod UID>/volumes/kubernetes.io~csi/<name>/mount, or "".
func podsDirOf(target string) string {
	if _, ok := pvNameOf(target); !ok {
		return ""
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Clean(target))))))
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func (d *Driver) sweepInlineInBackground() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := d.SweepInline(ctx)
	if err != nil {
		klog.ErrorS(err, "Removing inline volumes whose pods are gone", "removed", n)
		return
	}
	if n > 0 {
		klog.InfoS("Removed inline volumes whose pods are gone", "removed", n)
	}
}
