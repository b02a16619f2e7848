package nodeloss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// sync looks at everything of one node and returns when to look again (0:
// when something changes).
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		node = nil
	} else if err != nil {
		return 0, err
	}
	gone, why := NodeGone(node)
	now := c.cfg.Now()
	var next time.Time
	var errs []error
	objs, err := c.pvs.ByIndex(byNode, name)
	if err != nil {
		return 0, err
	}
	for _, obj := range objs {
		pv := obj.(*v1.PersistentVolume)
		d := Decide(pv, gone, now, c.cfg.ReleaseAfter)
		switch d.Action {
		case Mark:
			err = c.mark(ctx, pv, name, why, d.InUse, now)
		case Unmark:
			err = c.unmark(ctx, pv, name)
		case WriteOff:
			err = c.writeOff(ctx, pv, name, why)
		case Nothing:
			if !d.WriteOffAt.IsZero() && (next.IsZero() || d.WriteOffAt.Before(next)) {
				next = d.WriteOffAt
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("PV %s: %w", pv.Name, err))
		}
	}
	if node == nil {
		if err := c.reschedule(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	if next.IsZero() {
		return 0, errors.Join(errs...)
	}
	return max(next.Sub(now), time.Second), errors.Join(errs...)
}

// patchAnnotation sets (or, with value nil, removes) AnnNodeGone.
func (c *Controller) patchAnnotation(ctx context.Context, pv *v1.PersistentVolume, value *string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]*string{AnnNodeGone: value}}})
	if err != nil {
		return err
	}
	_, err = c.cfg.Client.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// mark annotates pv and tells its watchers, once per time its node goes:
// the event on the PV says what happens next, and a claim that still holds
// the PV is told what its user can do.
func (c *Controller) mark(ctx context.Context, pv *v1.PersistentVolume, node, why string, inUse bool, now time.Time) error {
	stamp := now.UTC().Format(time.RFC3339)
	if err := c.patchAnnotation(ctx, pv, &stamp); err != nil {
		return fmt.Errorf("mark it %s: %w", AnnNodeGone, err)
	}
	gone := fmt.Sprintf("Node %s is gone (%s): the volume's data on it cannot be reached", node, why)
	c.cfg.Recorder.Event(pv, v1.EventTypeWarning, ReasonNodeGone, gone+"; "+c.next(pv, inUse))
	klog.FromContext(ctx).Info("Local volume's node is gone", "pv", pv.Name, "node", node, "why", why, "inUse", inUse)
	if ref := pv.Spec.ClaimRef; inUse && ref != nil {
		claim := ref.DeepCopy()
		claim.Kind, claim.APIVersion = "PersistentVolumeClaim", "v1"
		c.cfg.Recorder.Eventf(claim, v1.EventTypeWarning, ReasonNodeGone,
			"%s (volume %s). Delete this claim to release the volume, or bring the node back", gone, pv.Name)
	}
	return nil
}

// next says what will become of a marked PV.
func (c *Controller) next(pv *v1.PersistentVolume, inUse bool) string {
	switch {
	case inUse:
		return "a claim still holds it, so it stays until the claim is deleted or the node comes back"
	case pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimRetain:
		return "reclaim policy Retain: delete the PV by hand once the data is given up, or bring the node back"
	case c.cfg.ReleaseAfter > 0:
		return fmt.Sprintf("unless the node comes back, the PV will be deleted %s after the node went and its data written off", c.cfg.ReleaseAfter)
	}
	return fmt.Sprintf("bring the node back, or give the data up: remove the finalizer %s and delete the PV (--node-loss-release-after makes the controller do so)", FinalizerProvisioner)
}

func (c *Controller) unmark(ctx context.Context, pv *v1.PersistentVolume, node string) error {
	if err := c.patchAnnotation(ctx, pv, nil); err != nil {
		return fmt.Errorf("remove %s: %w", AnnNodeGone, err)
	}
	klog.FromContext(ctx).Info("Local volume's node is back", "pv", pv.Name, "node", node)
	return nil
}

// writeOff removes the provisioner finalizer and deletes the PV, after
// asking the API server (not the caches) that the node is still gone and
// the PV still due. The data stays on the node; if the node comes back its
// orphan reconciler finds it.
func (c *Controller) writeOff(ctx context.Context, cached *v1.PersistentVolume, node, why string) error {
	api := c.cfg.Client.CoreV1()
	n, err := api.Nodes().Get(ctx, node, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		n = nil
	case err != nil:
		return fmt.Errorf("check that node %s is still gone: %w", node, err)
	}
	if gone, _ := NodeGone(n); !gone {
		return nil // the node event that says so is on its way
	}
	pv, err := api.PersistentVolumes().Get(ctx, cached.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if pv.UID != cached.UID || Decide(pv, true, c.cfg.Now(), c.cfg.ReleaseAfter).Action != WriteOff {
		return nil
	}
	if i := slices.Index(pv.Finalizers, FinalizerProvisioner); i >= 0 {
		pv.Finalizers = slices.Delete(pv.Finalizers, i, i+1)
		if pv, err = api.PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return c.failed(cached, fmt.Errorf("remove finalizer %s: %w", FinalizerProvisioner, err))
		}
	}
	err = api.PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &pv.UID, ResourceVersion: &pv.ResourceVersion},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return c.failed(cached, fmt.Errorf("delete: %w", err))
	}
	dir := ""
	if id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle); err == nil {
		dir = id.Dir
	}
	c.cfg.Recorder.Eventf(pv, v1.EventTypeWarning, ReasonWrittenOff,
		"Node %s is gone (%s) since %s: PV deleted and its data written off (directory %s under the node's base path is left as it was; if the node comes back, its orphan reconciler reports it)",
		node, why, pv.Annotations[AnnNodeGone], dir)
	klog.FromContext(ctx).Info("Wrote off local volume of a gone node", "pv", pv.Name, "node", node, "directory", dir,
		"goneSince", pv.Annotations[AnnNodeGone], "claim", claimName(pv))
	return nil
}

func (c *Controller) failed(pv *v1.PersistentVolume, err error) error {
	c.cfg.Recorder.Eventf(pv, v1.EventTypeWarning, ReasonWriteOffFailed, "Cannot write the volume off (will retry): %v", err)
	return err
}

func claimName(pv *v1.PersistentVolume) string {
	if r := pv.Spec.ClaimRef; r != nil {
		return r.Namespace + "/" + r.Name
	}
	return ""
}

// reschedule drops volume.kubernetes.io/selected-node from the driver's
// local claims still waiting for a node that no longer exists. The
// provisioner library would do so itself, but only in the instance that
// takes the claim: the node plugin of that very node, which is gone. The
// scheduler never does (a claim with a selected node fits no other node).
func (c *Controller) reschedule(ctx context.Context, node string) error {
	objs, err := c.claims.ByIndex(bySelectedNode, node)
	if err != nil {
		return err
	}
	var claims []*v1.PersistentVolumeClaim
	for _, obj := range objs {
		if claim := obj.(*v1.PersistentVolumeClaim); c.localClaim(claim) {
			claims = append(claims, claim)
		}
	}
	if len(claims) == 0 {
		return nil
	}
	// The scheduler may have picked a node the cache has not seen yet.
	if _, err := c.cfg.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err
	}
	var errs []error
	for _, claim := range claims {
		claim = claim.DeepCopy()
		delete(claim.Annotations, annSelectedNode)
		_, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, claim, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("claim %s/%s: drop %s: %w", claim.Namespace, claim.Name, annSelectedNode, err))
			continue
		}
		c.cfg.Recorder.Eventf(claim, v1.EventTypeWarning, ReasonSelectedNodeGone,
			"Node %s, selected for this claim, no longer exists; removed %s so that the scheduler picks another node", node, annSelectedNode)
		klog.FromContext(ctx).Info("Claim's selected node is gone; asked the scheduler for another", "claim", klog.KObj(claim), "node", node)
	}
	return errors.Join(errs...)
}

// localClaim: a claim of one of the driver's local StorageClasses.
func (c *Controller) localClaim(claim *v1.PersistentVolumeClaim) bool {
	name, beta := claim.Annotations["volume.beta.kubernetes.io/storage-class"]
	if !beta && claim.Spec.StorageClassName != nil {
		name = *claim.Spec.StorageClassName
	}
	class, err := c.classes.Get(name)
	return err == nil && class.Provisioner == c.cfg.DriverName && class.Parameters[params.Backend] == volumeid.Local
}
