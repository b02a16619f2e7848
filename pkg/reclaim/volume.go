package reclaim

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnRecyclingClaim is set on a PV while its contents are being scrubbed. Its
// value is the UID of the claim that released the volume. It is written
// before the first byte is removed, so that a recycler that crashed
// mid-scrub knows on restart that the job is unfinished and for which claim,
// and so that the final unbind only happens if the PV still belongs to that
// same released claim. It is part of the recycling lease (lease.go): the
// holder and expiry say who is scrubbing and whether anyone still is.
const AnnRecyclingClaim = "stowage.io/recycling-claim-uid"

// Event reasons recorded on PVs.
const (
	ReasonRecycleStarted = "RecycleStarted"
	ReasonVolumeRecycled = "VolumeRecycled"
	ReasonRecycleFailed  = "RecycleFailed"
	// ReasonRecycleStopped: a scrub was cancelled because the PV changed
	// under it (claimRef, phase, deletion, lease).
	ReasonRecycleStopped = "RecycleStopped"
)

// Annotations owned by Kubernetes that the recycler reads or clears.
const (
	annBoundByController      = "pv.kubernetes.io/bound-by-controller"
	annDynamicallyProvisioned = "pv.kubernetes.io/provisioned-by"
)

// waitingReason says why pv is not (yet) a volume to recycle, or "" if it is
// one: a PV of driver with policy Recycle, Released by a claim that had
// bound it (or Failed because Kubernetes found no recycler), not being
// deleted. Whether the claim is really gone is checked against the API
// server separately.
func waitingReason(pv *v1.PersistentVolume, driver string) string {
	switch {
	case pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driver:
		return "not a volume of driver " + driver
	case pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRecycle:
		return fmt.Sprintf("reclaim policy is %s, not Recycle", pv.Spec.PersistentVolumeReclaimPolicy)
	case pv.DeletionTimestamp != nil:
		return "the PV is being deleted"
	case pv.Status.Phase != v1.VolumeReleased && pv.Status.Phase != v1.VolumeFailed:
		return fmt.Sprintf("phase is %s", pv.Status.Phase)
	case pv.Spec.ClaimRef == nil:
		return "the PV has no claimRef"
	case pv.Spec.ClaimRef.UID == "":
		// Pre-bound by an admin and never bound: there is nothing of a
		// former user in it that Kubernetes would have released.
		return "the PV was never bound to a claim"
	}
	return ""
}

// claimStillExists reports whether claim (nil if none was found under the
// name in ref) is the very claim that ref points to. A claim created later
// under the same name is a different claim: it has its own UID.
func claimStillExists(ref *v1.ObjectReference, claim *v1.PersistentVolumeClaim) bool {
	return claim != nil && claim.UID == ref.UID
}

// unbind returns a copy of pv with the binding to its former claim removed,
// the way Kubernetes' own recycler does it, so that the PV controller makes
// it Available again:
//   - bound by the PV controller, or provisioned for a claim by a dynamic
//     provisioner: the whole claimRef goes, any matching claim may bind;
//   - pre-bound to a claim by name by an admin: only the UID goes, so the PV
//     stays reserved for a claim of that name, as the admin asked.
func unbind(pv *v1.PersistentVolume) *v1.PersistentVolume {
	out := pv.DeepCopy()
	delete(out.Annotations, AnnRecyclingClaim)
	delete(out.Annotations, AnnRecyclingHolder)
	delete(out.Annotations, AnnRecyclingExpires)
	if metav1.HasAnnotation(pv.ObjectMeta, annBoundByController) || metav1.HasAnnotation(pv.ObjectMeta, annDynamicallyProvisioned) {
		out.Spec.ClaimRef = nil
		delete(out.Annotations, annBoundByController)
	} else if out.Spec.ClaimRef != nil {
		out.Spec.ClaimRef.UID = ""
		out.Spec.ClaimRef.ResourceVersion = ""
	}
	return out
}

// claimKey renders a claimRef for messages.
func claimKey(ref *v1.ObjectReference) string {
	return fmt.Sprintf("%s/%s (uid %s)", ref.Namespace, ref.Name, ref.UID)
}
