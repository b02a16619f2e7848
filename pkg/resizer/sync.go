package resizer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/metrics"
)

// Event reasons, the ones external-resizer uses, so that tools that watch
// for them (kubectl describe readers, e2e suites) recognise Stowage's.
const (
	reasonResizing = "Resizing"
	reasonSucceed  = "VolumeResizeSuccessful"
	reasonFailed   = "VolumeResizeFailed"
)

// sync brings one claim a step closer to the size it asks for. Every step
// is written to be interrupted: what to do next is re-derived from the API
// objects each time, and the driver's expand is idempotent. An error asks
// for a retry with backoff.
func (r *Resizer) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil // not a key the handlers made; nothing to retry
	}
	pvc, err := r.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read claim %s from cache: %w", key, err)
	}
	if !wantsAttention(pvc) {
		return nil
	}
	pv, err := r.volumes.Get(pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// The PV cache may lag the claim cache; the claim comes back when
		// this is retried.
		return fmt.Errorf("claim %s is bound to PV %s, which is not in the cache yet", key, pvc.Spec.VolumeName)
	}
	if err != nil {
		return fmt.Errorf("read PV %s from cache: %w", pvc.Spec.VolumeName, err)
	}
	if why := r.notOurs(pvc, pv); why != "" {
		klog.FromContext(ctx).V(5).Info("Not resizing", "claim", key, "reason", why)
		return nil
	}
	p := decide(pvc, pv)
	logger := klog.FromContext(ctx).WithValues("claim", key, "pv", pv.Name, "step", p.step, "target", p.target.String())
	logger.V(4).Info("Resize plan", "why", p.why)
	switch p.step {
	case expand:
		return r.expand(klog.NewContext(ctx, logger), pvc, pv, p.target)
	case finish:
		return r.finish(klog.NewContext(ctx, logger), pvc, pv, p.target)
	case clear:
		_, err := r.patchClaimStatus(ctx, pvc, cleared(pvc))
		if err == nil {
			logger.Info("Cleared the failed resize: the request is back at the claim's capacity")
		}
		return err
	}
	return nil
}

// notOurs says why the claim's volume is left to someone else, or "".
func (r *Resizer) notOurs(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) string {
	switch {
	case pv.Spec.CSI == nil || pv.Spec.CSI.Driver != r.cfg.DriverName:
		return "the PV is not a volume of this driver"
	case pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID:
		return "the PV is not bound to this claim"
	case !r.cfg.Owns(pv):
		return "another Stowage instance owns the volume"
	}
	// The API server refuses a larger request when the class does not
	// allow expansion; a class changed since then is obeyed too.
	class, err := r.classes.Get(className(pvc))
	if err != nil || class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
		return "the claim's StorageClass does not allow volume expansion"
	}
	return ""
}

// expand grows the volume to target: claim marked in progress, driver
// called, PV's capacity raised, claim marked finished.
func (r *Resizer) expand(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, target resource.Quantity) error {
	logger := klog.FromContext(ctx)
	if !isInProgress(pvc, target) {
		updated, err := r.patchClaimStatus(ctx, pvc, inProgress(pvc, target))
		if err != nil {
			// A conflict is routine (the claim changed; it is read again);
			// anything else, such as missing rights, the user must hear of.
			if !apierrors.IsConflict(err) {
				r.cfg.Recorder.Eventf(pvc, v1.EventTypeWarning, reasonFailed, "Cannot start resizing volume %s: %v", pv.Name, err)
			}
			return err
		}
		pvc = updated
	}
	r.cfg.Recorder.Eventf(pvc, v1.EventTypeNormal, reasonResizing, "Resizing volume %s to %s", pv.Name, target.String())
	callCtx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	start := time.Now()
	resp, err := r.cfg.Expander.ControllerExpandVolume(callCtx, &csi.ControllerExpandVolumeRequest{
		VolumeId:      pv.Spec.CSI.VolumeHandle,
		CapacityRange: &csi.CapacityRange{RequiredBytes: target.Value()},
	})
	cancel()
	metrics.Observe(metrics.Resize, start, err)
	if err != nil {
		st := status.Convert(err)
		msg := fmt.Sprintf("resize volume %s to %s: %s", pv.Name, target.String(), st.Message())
		r.cfg.Recorder.Event(pvc, v1.EventTypeWarning, reasonFailed, msg)
		final := infeasible(st.Code())
		logger.Error(err, "ControllerExpandVolume failed", "final", final)
		if !hasCondition(pvc, v1.PersistentVolumeClaimControllerResizeError, msg) || final {
			if _, perr := r.patchClaimStatus(ctx, pvc, failed(pvc, msg, final)); perr != nil {
				return fmt.Errorf("%s; and then: %w", msg, perr)
			}
		}
		if final {
			return nil // the user changes the request, or nothing happens
		}
		return fmt.Errorf("%s", msg)
	}
	size := target
	if got := resource.NewQuantity(resp.GetCapacityBytes(), resource.BinarySI); got.Cmp(size) > 0 {
		size = *got // the driver may round up; the claim gets what it has
	}
	return r.finish(ctx, pvc, pv, size)
}

// finish records size on the PV and then on the claim. The PV comes first:
// a restart between the two finds the PV large enough and only finishes.
func (r *Resizer) finish(ctx context.Context, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, size resource.Quantity) error {
	if cur := pv.Spec.Capacity[v1.ResourceStorage]; cur.Cmp(size) < 0 {
		if err := r.patchPVCapacity(ctx, pv, size); err != nil {
			return err
		}
	}
	if _, err := r.patchClaimStatus(ctx, pvc, finished(pvc, size)); err != nil {
		return err
	}
	r.cfg.Recorder.Eventf(pvc, v1.EventTypeNormal, reasonSucceed, "Resized volume %s to %s", pv.Name, size.String())
	klog.FromContext(ctx).Info("Resized volume", "size", size.String())
	return nil
}

// patchPVCapacity raises the PV's capacity, refused (Conflict) if the PV
// changed since it was read.
func (r *Resizer) patchPVCapacity(ctx context.Context, pv *v1.PersistentVolume, size resource.Quantity) error {
	patch, err := json.Marshal(map[string]interface{}{
		"metadata": map[string]interface{}{"resourceVersion": pv.ResourceVersion},
		"spec":     map[string]interface{}{"capacity": map[string]string{string(v1.ResourceStorage): size.String()}},
	})
	if err != nil {
		return err
	}
	_, err = r.cfg.Client.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("set the capacity of PV %s to %s: %w", pv.Name, size.String(), err)
	}
	return nil
}

// infeasible codes say the request can never succeed as it is (the set
// external-resizer uses): retrying would only repeat the refusal.
func infeasible(c codes.Code) bool {
	return c == codes.InvalidArgument || c == codes.OutOfRange || c == codes.NotFound
}

// className is the claim's class, from the field or the old annotation.
func className(pvc *v1.PersistentVolumeClaim) string {
	if c, ok := pvc.Annotations["volume.beta.kubernetes.io/storage-class"]; ok {
		return c
	}
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}
