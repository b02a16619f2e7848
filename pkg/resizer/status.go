package resizer

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// The claim conditions that belong to resizing; the resizer replaces them
// as a group and leaves every other condition alone.
var resizeConditions = map[v1.PersistentVolumeClaimConditionType]bool{
	v1.PersistentVolumeClaimResizing:                true,
	v1.PersistentVolumeClaimFileSystemResizePending: true,
	v1.PersistentVolumeClaimControllerResizeError:   true,
	v1.PersistentVolumeClaimNodeResizeError:         true,
}

// withResizeConditions returns conds with its resize conditions replaced by
// want. A condition that stays what it was keeps its transition time.
func withResizeConditions(conds []v1.PersistentVolumeClaimCondition, want ...v1.PersistentVolumeClaimCondition) []v1.PersistentVolumeClaimCondition {
	var out []v1.PersistentVolumeClaimCondition
	old := map[v1.PersistentVolumeClaimConditionType]v1.PersistentVolumeClaimCondition{}
	for _, c := range conds {
		if resizeConditions[c.Type] {
			old[c.Type] = c
		} else {
			out = append(out, c)
		}
	}
	now := metav1.Now()
	for _, c := range want {
		c.Status = v1.ConditionTrue
		c.LastTransitionTime = now
		if prev, ok := old[c.Type]; ok && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		out = append(out, c)
	}
	return out
}

func hasCondition(pvc *v1.PersistentVolumeClaim, t v1.PersistentVolumeClaimConditionType, message string) bool {
	for _, c := range pvc.Status.Conditions {
		if c.Type == t && c.Status == v1.ConditionTrue && c.Message == message {
			return true
		}
	}
	return false
}

func setState(pvc *v1.PersistentVolumeClaim, s v1.ClaimResourceStatus) {
	if s == "" {
		delete(pvc.Status.AllocatedResourceStatuses, v1.ResourceStorage)
		if len(pvc.Status.AllocatedResourceStatuses) == 0 {
			pvc.Status.AllocatedResourceStatuses = nil
		}
		return
	}
	if pvc.Status.AllocatedResourceStatuses == nil {
		pvc.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{}
	}
	pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage] = s
}

func setAllocated(pvc *v1.PersistentVolumeClaim, size resource.Quantity) {
	if pvc.Status.AllocatedResources == nil {
		pvc.Status.AllocatedResources = v1.ResourceList{}
	}
	pvc.Status.AllocatedResources[v1.ResourceStorage] = size
}

// inProgress is the claim marked as being grown to target.
func inProgress(pvc *v1.PersistentVolumeClaim, target resource.Quantity) *v1.PersistentVolumeClaim {
	out := pvc.DeepCopy()
	setState(out, v1.PersistentVolumeClaimControllerResizeInProgress)
	setAllocated(out, target)
	out.Status.Conditions = withResizeConditions(out.Status.Conditions,
		v1.PersistentVolumeClaimCondition{Type: v1.PersistentVolumeClaimResizing})
	return out
}

// isInProgress says whether the claim is already marked so (a retry).
func isInProgress(pvc *v1.PersistentVolumeClaim, target resource.Quantity) bool {
	allocated, ok := pvc.Status.AllocatedResources[v1.ResourceStorage]
	return ok && allocated.Cmp(target) == 0 &&
		pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage] == v1.PersistentVolumeClaimControllerResizeInProgress &&
		hasCondition(pvc, v1.PersistentVolumeClaimResizing, "")
}

// failed is the claim after the driver refused: infeasible failures are
// final (ControllerResizeInfeasible, the user may lower the request), the
// others keep the resize in progress while it is retried.
func failed(pvc *v1.PersistentVolumeClaim, message string, infeasible bool) *v1.PersistentVolumeClaim {
	out := pvc.DeepCopy()
	errCond := v1.PersistentVolumeClaimCondition{Type: v1.PersistentVolumeClaimControllerResizeError, Message: message}
	if infeasible {
		setState(out, v1.PersistentVolumeClaimControllerResizeInfeasible)
		out.Status.Conditions = withResizeConditions(out.Status.Conditions, errCond)
		return out
	}
	setState(out, v1.PersistentVolumeClaimControllerResizeInProgress)
	out.Status.Conditions = withResizeConditions(out.Status.Conditions,
		v1.PersistentVolumeClaimCondition{Type: v1.PersistentVolumeClaimResizing}, errCond)
	return out
}

// finished is the claim once its volume has capacity: nothing pending,
// nothing failed.
func finished(pvc *v1.PersistentVolumeClaim, capacity resource.Quantity) *v1.PersistentVolumeClaim {
	out := pvc.DeepCopy()
	if out.Status.Capacity == nil {
		out.Status.Capacity = v1.ResourceList{}
	}
	out.Status.Capacity[v1.ResourceStorage] = capacity
	setState(out, "")
	out.Status.Conditions = withResizeConditions(out.Status.Conditions)
	return out
}

// cleared is the claim after its user gave up a failed expansion: the size
// that failed is no longer allocated (resource quota counts it).
func cleared(pvc *v1.PersistentVolumeClaim) *v1.PersistentVolumeClaim {
	out := finished(pvc, pvc.Status.Capacity[v1.ResourceStorage])
	setAllocated(out, out.Status.Capacity[v1.ResourceStorage])
	return out
}

// patchClaimStatus writes the difference between old and new to the
// claim's status. The patch carries old's resourceVersion: a claim changed
// since it was read is refused (Conflict) and looked at again, so that a
// decision is never written over a request it did not see.
func (r *Resizer) patchClaimStatus(ctx context.Context, old, new *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error) {
	patch, err := statusPatch(old, new)
	if err != nil {
		return nil, err
	}
	out, err := r.cfg.Client.CoreV1().PersistentVolumeClaims(old.Namespace).Patch(ctx, old.Name,
		types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return nil, fmt.Errorf("update the status of claim %s/%s: %w", old.Namespace, old.Name, err)
	}
	return out, nil
}

func statusPatch(old, new *v1.PersistentVolumeClaim) ([]byte, error) {
	before, err := json.Marshal(old)
	if err != nil {
		return nil, err
	}
	after, err := json.Marshal(new)
	if err != nil {
		return nil, err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(before, after, v1.PersistentVolumeClaim{})
	if err != nil {
		return nil, fmt.Errorf("patch for claim %s/%s: %w", old.Namespace, old.Name, err)
	}
	var m map[string]interface{}
	if err := json.Unmarshal(patch, &m); err != nil {
		return nil, err
	}
	meta, _ := m["metadata"].(map[string]interface{})
	if meta == nil {
		meta = map[string]interface{}{}
	}
	meta["resourceVersion"] = old.ResourceVersion
	m["metadata"] = meta
	return json.Marshal(m)
}
