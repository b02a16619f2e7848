package resizer

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// step is what one claim needs next.
type step int

const (
	// nothing: the claim has what it asked for, or waits for its user.
	nothing step = iota
	// expand: ask the driver to grow the volume to target.
	expand
	// finish: the PV already has target (a restart came between the PV
	// update and the claim's status); only the claim is left to record it.
	finish
	// clear: the user lowered the request to what the claim already has
	// after a failed expansion; drop the failure from the claim's status.
	clear
)

func (s step) String() string {
	return [...]string{"nothing", "expand", "finish", "clear"}[s]
}

// plan is what decide found, and why, for the logs.
type plan struct {
	step   step
	target resource.Quantity
	why    string
}

// decide reads everything from the claim and its PV, never from memory, so
// that a restart in the middle of a resize picks it up where the API
// objects say it stopped. It follows the protocol kubelet and kubectl know
// from external-resizer (KEP 1790, recovery from expansion failure):
// status.allocatedResources is the size being worked on and
// allocatedResourceStatuses[storage] how that is going.
func decide(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) plan {
	request, ok := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok {
		return plan{step: nothing, why: "the claim requests no storage"}
	}
	capacity := pvc.Status.Capacity[v1.ResourceStorage]
	state := pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage]
	allocated, hasAllocated := pvc.Status.AllocatedResources[v1.ResourceStorage]

	// external-resizer keeps working on allocatedResources after an
	// uncertain failure, because a remote driver may still be growing the
	// volume. Stowage's driver is called in-process and has returned when
	// the call has; it never shrinks and answers an expand with what the
	// volume has if that is more. So the user's current request is always
	// safe to try: a lowered one (the driver said "ask for less") ends with
	// the size the volume really has, never less.
	target := request
	if target.Cmp(capacity) <= 0 {
		if ours(state) {
			return plan{step: clear, target: capacity, why: "the request is back at the claim's capacity"}
		}
		return plan{step: nothing, why: "the claim already has its request"}
	}
	if state == v1.PersistentVolumeClaimControllerResizeInfeasible && hasAllocated && allocated.Cmp(target) == 0 {
		return plan{step: nothing, target: target,
			why: "expanding to this size failed for good; waiting for the user to change the request"}
	}
	if pvSize, ok := pv.Spec.Capacity[v1.ResourceStorage]; ok && pvSize.Cmp(target) >= 0 {
		return plan{step: finish, target: pvSize, why: "the PV already has the requested size"}
	}
	return plan{step: expand, target: target, why: "the request is larger than the volume"}
}

// ours says whether a claim's resize status is one the controller side
// sets (the node-side ones belong to kubelet).
func ours(s v1.ClaimResourceStatus) bool {
	return s == v1.PersistentVolumeClaimControllerResizeInProgress ||
		s == v1.PersistentVolumeClaimControllerResizeInfeasible
}

// wantsAttention is the cheap filter of the event handlers: a claim is
// queued only if it asks for more than it has or carries our status.
func wantsAttention(pvc *v1.PersistentVolumeClaim) bool {
	if pvc.Status.Phase != v1.ClaimBound || pvc.Spec.VolumeName == "" {
		return false
	}
	if ours(pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage]) {
		return true
	}
	request := pvc.Spec.Resources.Requests[v1.ResourceStorage]
	capacity := pvc.Status.Capacity[v1.ResourceStorage]
	return request.Cmp(capacity) > 0
}
