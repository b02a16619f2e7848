package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/metrics"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// sync brings one content a step closer to what it asks for. Every step is
// written to be interrupted: what to do next is read from the content each
// time, and the driver's calls are idempotent by name, so a restart in the
// middle of a copy only asks the driver again. pending says the snapshot is
// still being copied and should be asked about again later.
func (s *Snapshotter) sync(ctx context.Context, name string) (pending bool, err error) {
	c, err := s.contents.Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read VolumeSnapshotContent %s from cache: %w", name, err)
	}
	handle, why := s.source(c)
	if why != "" {
		klog.FromContext(ctx).V(5).Info("Not serving", "content", name, "reason", why)
		return false, nil
	}
	if !s.cfg.Owns(handle) {
		return false, s.notOurs(ctx, c, handle)
	}
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("content", name))
	if c.DeletionTimestamp != nil {
		if mayDelete(c) {
			return false, s.delete(ctx, c)
		}
		if _, creating := c.Annotations[AnnBeingCreated]; !creating {
			// snapshot-controller has not said the snapshot may go yet; its
			// annotation brings the content back. No new snapshot is cut
			// for a content on its way out.
			return false, nil
		}
		// A CreateSnapshot was sent and not answered: get the answer, so
		// that the snapshot it may have cut is named and can be deleted.
	}
	if isReady(c) {
		_, err := s.clearBeingCreated(ctx, c)
		return false, err
	}
	if c.Spec.Source.VolumeHandle != nil {
		return s.create(ctx, c)
	}
	return s.check(ctx, c)
}

// source is the handle Owns decides on, or why the content is not one this
// snapshotter serves at all.
func (s *Snapshotter) source(c *crdv1.VolumeSnapshotContent) (handle, why string) {
	src := c.Spec.Source
	switch {
	case c.Spec.Driver != s.cfg.DriverName:
		return "", "another driver's content"
	case c.Annotations[annGroupMember] != "":
		return "", "a member of a group snapshot, which Stowage does not cut"
	case (src.VolumeHandle == nil) == (src.SnapshotHandle == nil):
		return "", "not exactly one of spec.source.volumeHandle and snapshotHandle (snapshot-controller reports it)"
	case src.VolumeHandle != nil:
		return *src.VolumeHandle, ""
	}
	return *src.SnapshotHandle, ""
}

// notOurs tells the controller's user why a content of a node-local volume
// is never served: its node plugin only watches contents labelled with its
// node, and this one is not.
func (s *Snapshotter) notOurs(ctx context.Context, c *crdv1.VolumeSnapshotContent, handle string) error {
	klog.FromContext(ctx).V(5).Info("Not serving: another Stowage instance owns the volume", "content", c.Name, "handle", handle)
	if s.cfg.NodeName != "" || c.Labels[ManagedByLabel] != "" || c.DeletionTimestamp != nil {
		return nil
	}
	// A local volume or snapshot without the label (a pre-provisioned
	// content, which snapshot-controller never labels, or one made without
	// distributed snapshotting): the handle names its node, so the
	// controller hands it to that node's plugin.
	node := localNode(handle)
	if node == "" {
		return nil
	}
	meta := map[string]interface{}{"resourceVersion": c.ResourceVersion, "labels": map[string]string{ManagedByLabel: node}}
	if _, err := s.patch(ctx, c, map[string]interface{}{"metadata": meta}, ""); err != nil {
		s.cfg.Recorder.Eventf(c, v1.EventTypeWarning, reasonNotManaged,
			"%s is on node %s's local disk, and only that node's Stowage plugin can serve it; labelling the content %s=%s failed: %v", handle, node, ManagedByLabel, node, err)
		return err
	}
	s.cfg.Recorder.Eventf(c, v1.EventTypeNormal, reasonHandedToNode, "%s is on node %s's local disk: labelled %s=%s for that node's Stowage plugin", handle, node, ManagedByLabel, node)
	return nil
}

// localNode is the node a local volume or snapshot handle names, or "".
func localNode(handle string) string {
	if snap, err := volumeid.ParseSnapshot(handle); err == nil && snap.Backend == volumeid.Local {
		return snap.Node
	}
	if id, err := volumeid.Parse(handle); err == nil && id.Backend == volumeid.Local {
		return id.Node
	}
	return ""
}

// mayDelete is the sidecar's rule for a content with a deletionTimestamp:
// an unbound pre-provisioned one goes at once; otherwise not while a
// CreateSnapshot is unanswered, and only once snapshot-controller says so.
func mayDelete(c *crdv1.VolumeSnapshotContent) bool {
	if c.Spec.Source.SnapshotHandle != nil && c.Spec.VolumeSnapshotRef.UID == "" {
		return true
	}
	if _, creating := c.Annotations[AnnBeingCreated]; creating {
		return false
	}
	_, deleting := c.Annotations[AnnBeingDeleted]
	return deleting
}

// create asks the driver for the snapshot of a dynamic content, first time
// and every poll alike: the driver answers ready_to_use=false until the
// copy is complete.
func (s *Snapshotter) create(ctx context.Context, c *crdv1.VolumeSnapshotContent) (bool, error) {
	volume := *c.Spec.Source.VolumeHandle
	if c.Spec.VolumeSnapshotRef.UID == "" {
		return false, fmt.Errorf("content %s is not bound to a VolumeSnapshot yet (spec.volumeSnapshotRef.uid is empty); snapshot-controller binds it", c.Name)
	}
	name := "snapshot-" + string(c.Spec.VolumeSnapshotRef.UID)
	params, err := s.parameters(c)
	if err != nil {
		s.fail(ctx, c, reasonCreateFailed, err.Error())
		return false, err
	}
	named := c.Status != nil && c.Status.SnapshotHandle != nil
	if !named {
		// Until the status names the snapshot, only the annotation says
		// that one may exist.
		if c, err = s.markCreating(ctx, c); err != nil {
			return false, err
		}
		if c.Status == nil {
			s.cfg.Recorder.Eventf(c, v1.EventTypeNormal, reasonCreating, "Cutting snapshot %s of volume %s", name, volume)
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	start := time.Now()
	resp, err := s.cfg.CSI.CreateSnapshot(callCtx, &csi.CreateSnapshotRequest{SourceVolumeId: volume, Name: name, Parameters: params})
	metrics.Observe("CreateSnapshot", start, err) // in-process: not seen by the gRPC interceptor
	cancel()
	if err == nil && resp.GetSnapshot().GetSnapshotId() == "" {
		err = status.Error(codes.Internal, "the driver answered without a snapshot ID")
	}
	if err != nil {
		if final(err) && !named {
			// The driver said for sure: no snapshot was cut.
			if _, cerr := s.clearBeingCreated(ctx, c); cerr != nil {
				return false, cerr
			}
		}
		msg := fmt.Sprintf("Failed to create snapshot %s of volume %s: %s", name, volume, status.Convert(err).Message())
		s.fail(ctx, c, reasonCreateFailed, msg)
		return false, errors.New(msg)
	}
	if c, err = s.recordSnapshot(ctx, c, resp.GetSnapshot()); err != nil {
		return false, err
	}
	if _, err = s.clearBeingCreated(ctx, c); err != nil {
		return false, err
	}
	return !resp.GetSnapshot().GetReadyToUse(), nil
}

// check fills the status of a pre-provisioned content from the driver's
// record of its snapshot.
func (s *Snapshotter) check(ctx context.Context, c *crdv1.VolumeSnapshotContent) (bool, error) {
	id := *c.Spec.Source.SnapshotHandle
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	resp, err := s.cfg.CSI.ListSnapshots(callCtx, &csi.ListSnapshotsRequest{SnapshotId: id})
	cancel()
	var msg string
	switch {
	case err != nil:
		msg = fmt.Sprintf("Failed to look up snapshot %s: %s", id, status.Convert(err).Message())
	case len(resp.GetEntries()) == 0:
		msg = fmt.Sprintf("Snapshot %s does not exist; check spec.source.snapshotHandle", id)
	}
	if msg != "" {
		s.fail(ctx, c, reasonCheckFailed, msg)
		return false, errors.New(msg)
	}
	snap := resp.GetEntries()[0].GetSnapshot()
	if _, err := s.recordSnapshot(ctx, c, snap); err != nil {
		return false, err
	}
	return !snap.GetReadyToUse(), nil
}

// delete removes the content's snapshot when its policy says Delete, then
// lets the content go. The driver's DeleteSnapshot succeeds for a snapshot
// already gone, so a retry after a failed finalizer update is harmless.
func (s *Snapshotter) delete(ctx context.Context, c *crdv1.VolumeSnapshotContent) error {
	if c.Spec.DeletionPolicy == crdv1.VolumeSnapshotContentDelete {
		if id := snapshotID(c); id != "" {
			callCtx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			start := time.Now()
			_, err := s.cfg.CSI.DeleteSnapshot(callCtx, &csi.DeleteSnapshotRequest{SnapshotId: id})
			metrics.Observe("DeleteSnapshot", start, err)
			cancel()
			if err != nil {
				msg := fmt.Sprintf("Failed to delete snapshot %s: %s", id, status.Convert(err).Message())
				s.cfg.Recorder.Event(c, v1.EventTypeWarning, reasonDeleteFailed, msg)
				return errors.New(msg)
			}
			s.cfg.Recorder.Eventf(c, v1.EventTypeNormal, reasonDeleted, "Deleted snapshot %s", id)
			klog.FromContext(ctx).Info("Deleted snapshot", "snapshot", id)
		}
	}
	return s.removeFinalizer(ctx, c)
}

// snapshotID is the snapshot a content names: the one cut for it, or the
// one it was made for. A pre-provisioned content deleted before its status
// was filled still names its snapshot, so the snapshot does not leak.
func snapshotID(c *crdv1.VolumeSnapshotContent) string {
	if c.Status != nil && c.Status.SnapshotHandle != nil {
		return *c.Status.SnapshotHandle
	}
	if c.Spec.Source.SnapshotHandle != nil {
		return *c.Spec.Source.SnapshotHandle
	}
	return ""
}

// final says the driver answered for sure that no snapshot was cut. The
// codes left out mean the call may still be running or was never seen
// (the same set as the sidecar's); so does an error that is no gRPC status.
func final(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return false
	}
	return true
}

func isReady(c *crdv1.VolumeSnapshotContent) bool {
	return c.Status != nil && c.Status.ReadyToUse != nil && *c.Status.ReadyToUse
}
