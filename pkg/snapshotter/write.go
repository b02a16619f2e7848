package snapshotter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Names shared with snapshot-controller and the csi-snapshotter sidecar:
// they are the protocol, so they are spelled exactly as there.
const (
	// ManagedByLabel names the node whose plugin serves a content of a
	// node-local volume (set by snapshot-controller with
	// --enable-distributed-snapshotting).
	ManagedByLabel = "snapshot.storage.kubernetes.io/managed-by"
	// AnnBeingCreated is on a content while a CreateSnapshot has been sent
	// and not answered: a snapshot may exist that no status names yet, so
	// snapshot-controller must not let the content go.
	AnnBeingCreated = "snapshot.storage.kubernetes.io/volumesnapshot-being-created"
	// AnnBeingDeleted is set by snapshot-controller when a content may be
	// deleted from the storage.
	AnnBeingDeleted = "snapshot.storage.kubernetes.io/volumesnapshot-being-deleted"
	// Finalizer keeps a content until its snapshot is deleted (or retained).
	Finalizer = "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
	// annGroupMember marks a member of a VolumeGroupSnapshot, which Stowage
	// does not cut.
	annGroupMember = "groupsnapshot.storage.k8s.io/volumeGroupSnapshotHandle"
)

// Event reasons: the sidecar's where it has one, so that what watches for
// them recognises Stowage's.
const (
	reasonCreating     = "CreatingSnapshot"
	reasonCreated      = "SnapshotCreated"
	reasonReady        = "SnapshotReady"
	reasonCreateFailed = "SnapshotCreationFailed"
	reasonCheckFailed  = "SnapshotContentCheckandUpdateFailed"
	reasonDeleted      = "SnapshotDeleted"
	reasonDeleteFailed = "SnapshotDeleteError"
	reasonNotManaged   = "SnapshotNotManaged"
	reasonHandedToNode = "SnapshotHandedToNode"
)

// markCreating puts the being-created annotation and the finalizer on the
// content before the driver is asked for a snapshot, so that neither a
// delete nor a restart in between can leak the snapshot. snapshot-controller
// adds the same finalizer; adding it here too closes the window before it
// does. The resourceVersion makes the patch fail on a content changed since
// it was read, instead of overwriting finalizers someone else just set.
func (s *Snapshotter) markCreating(ctx context.Context, c *crdv1.VolumeSnapshotContent) (*crdv1.VolumeSnapshotContent, error) {
	hasFinalizer := slices.Contains(c.Finalizers, Finalizer)
	if c.Annotations[AnnBeingCreated] != "" && hasFinalizer {
		return c, nil
	}
	meta := map[string]interface{}{
		"resourceVersion": c.ResourceVersion,
		"annotations":     map[string]string{AnnBeingCreated: "yes"},
	}
	if !hasFinalizer {
		meta["finalizers"] = append(slices.Clone(c.Finalizers), Finalizer)
	}
	return s.patch(ctx, c, map[string]interface{}{"metadata": meta}, "")
}

// clearBeingCreated removes the being-created annotation once the driver has
// answered: either the status names the snapshot, or it said for sure that
// there is none.
func (s *Snapshotter) clearBeingCreated(ctx context.Context, c *crdv1.VolumeSnapshotContent) (*crdv1.VolumeSnapshotContent, error) {
	if _, ok := c.Annotations[AnnBeingCreated]; !ok {
		return c, nil
	}
	return s.patch(ctx, c, map[string]interface{}{
		"metadata": map[string]interface{}{"annotations": map[string]interface{}{AnnBeingCreated: nil}},
	}, "")
}

// removeFinalizer lets the API server delete the content.
func (s *Snapshotter) removeFinalizer(ctx context.Context, c *crdv1.VolumeSnapshotContent) error {
	if !slices.Contains(c.Finalizers, Finalizer) {
		return nil
	}
	rest := slices.DeleteFunc(slices.Clone(c.Finalizers), func(f string) bool { return f == Finalizer })
	_, err := s.patch(ctx, c, map[string]interface{}{
		"metadata": map[string]interface{}{"resourceVersion": c.ResourceVersion, "finalizers": rest},
	}, "")
	return err
}

// recordSnapshot writes what the driver said of the snapshot into the
// content's status, only what changed (polls of a copy in progress write
// nothing), and tells the user when the snapshot appears and when it is ready.
func (s *Snapshotter) recordSnapshot(ctx context.Context, c *crdv1.VolumeSnapshotContent, snap *csi.Snapshot) (*crdv1.VolumeSnapshotContent, error) {
	old := c.Status
	if old == nil {
		old = &crdv1.VolumeSnapshotContentStatus{}
	}
	st := map[string]interface{}{}
	if old.SnapshotHandle == nil || *old.SnapshotHandle != snap.GetSnapshotId() {
		st["snapshotHandle"] = snap.GetSnapshotId()
	}
	if old.CreationTime == nil {
		created := time.Now()
		if snap.GetCreationTime() != nil {
			created = snap.GetCreationTime().AsTime()
		}
		st["creationTime"] = created.UnixNano()
	}
	if size := snap.GetSizeBytes(); size > 0 && (old.RestoreSize == nil || *old.RestoreSize != size) {
		st["restoreSize"] = size
	}
	ready := snap.GetReadyToUse()
	if old.ReadyToUse == nil || *old.ReadyToUse != ready {
		st["readyToUse"] = ready
	}
	if ready && old.Error != nil {
		st["error"] = nil // the failure it told of is over
	}
	if len(st) == 0 {
		return c, nil
	}
	updated, err := s.patch(ctx, c, map[string]interface{}{"status": st}, "status")
	if err != nil {
		return c, err
	}
	if old.SnapshotHandle == nil {
		msg := "Snapshot %s cut"
		if !ready {
			msg = "Snapshot %s cut; its data is being copied"
		}
		s.cfg.Recorder.Eventf(updated, v1.EventTypeNormal, reasonCreated, msg, snap.GetSnapshotId())
	}
	if ready && (old.ReadyToUse == nil || !*old.ReadyToUse) {
		s.cfg.Recorder.Eventf(updated, v1.EventTypeNormal, reasonReady, "Snapshot %s is ready to use", snap.GetSnapshotId())
		klog.FromContext(ctx).Info("Snapshot ready", "snapshot", snap.GetSnapshotId(), "bytes", snap.GetSizeBytes())
	}
	return updated, nil
}

// fail records a failure in the content's status (which snapshot-controller
// copies to the VolumeSnapshot) and as an event. The same failure again
// writes nothing, so a retried failure does not flood the API server.
func (s *Snapshotter) fail(ctx context.Context, c *crdv1.VolumeSnapshotContent, reason, msg string) {
	if c.Status != nil && c.Status.Error != nil && c.Status.Error.Message != nil && *c.Status.Error.Message == msg {
		return
	}
	s.cfg.Recorder.Event(c, v1.EventTypeWarning, reason, msg)
	_, err := s.patch(ctx, c, map[string]interface{}{"status": map[string]interface{}{
		"readyToUse": false,
		"error":      map[string]interface{}{"time": metav1.Now(), "message": msg},
	}}, "status")
	if err != nil {
		klog.FromContext(ctx).Error(err, "Cannot record the failure in the content's status", "failure", msg)
	}
}

// patch applies a JSON merge patch to the content (or to its status
// subresource).
func (s *Snapshotter) patch(ctx context.Context, c *crdv1.VolumeSnapshotContent, p map[string]interface{}, subresource string) (*crdv1.VolumeSnapshotContent, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var sub []string
	if subresource != "" {
		sub = []string{subresource}
	}
	updated, err := s.cfg.Client.SnapshotV1().VolumeSnapshotContents().Patch(ctx, c.Name, types.MergePatchType, data, metav1.PatchOptions{}, sub...)
	if err != nil {
		return nil, fmt.Errorf("update VolumeSnapshotContent %s: %w", c.Name, err)
	}
	return updated, nil
}
