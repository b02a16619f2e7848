package nodeloss

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Names the companion writes or reads.
const (
	// AnnNodeGone marks a local PV whose node is gone, with the time
	// (RFC 3339) the controller first saw it gone; the write-off delay
	// counts from there.
	AnnNodeGone = "stowage.io/node-gone"
	// FinalizerProvisioner is the provisioner library's PV finalizer, which
	// only the node plugin of the volume's node would remove.
	FinalizerProvisioner = "external-provisioner.volume.kubernetes.io/finalizer"
	annSelectedNode      = "volume.kubernetes.io/selected-node"
)

// Event reasons.
const (
	ReasonNodeGone         = "NodeGone"
	ReasonWrittenOff       = "VolumeWrittenOff"
	ReasonWriteOffFailed   = "VolumeWriteOffFailed"
	ReasonSelectedNodeGone = "SelectedNodeGone"
)

// NodeGone says whether node is gone for good, and why: its Node object was
// deleted (node is nil) or an admin tainted it out of service, the taint
// Kubernetes itself uses to say "this node will not come back as it was".
// A node that is merely NotReady is not gone: it may be rebooting.
func NodeGone(node *v1.Node) (bool, string) {
	if node == nil {
		return true, "its Node object was deleted"
	}
	for _, t := range node.Spec.Taints {
		if t.Key == v1.TaintNodeOutOfService {
			return true, fmt.Sprintf("it is tainted %s", v1.TaintNodeOutOfService)
		}
	}
	return false, ""
}

// LocalNode returns the node of a local PV of driver, or "" for any other PV.
func LocalNode(driver string, pv *v1.PersistentVolume) string {
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driver {
		return ""
	}
	id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
	if err != nil || id.Backend != volumeid.Local {
		return ""
	}
	return id.Node
}

// Action is what to do with one local PV.
type Action int

const (
	// Nothing to do now (WriteOffAt may say when to look again).
	Nothing Action = iota
	// Mark annotates the PV and tells about it: the node just went.
	Mark
	// Unmark removes the annotation: the node came back.
	Unmark
	// WriteOff removes the provisioner finalizer and deletes the PV.
	WriteOff
)

func (a Action) String() string {
	return [...]string{"nothing", "mark", "unmark", "write off"}[a]
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// InUse: a claim holds the PV (Bound, or being bound); it is never
	// written off and its claim is told.
	InUse bool
	// WriteOffAt is when a marked PV becomes due for write-off, if it ever
	// will; the caller looks again then.
	WriteOffAt time.Time
}

// InUse says whether a claim holds pv or is being bound to it. A Released
// or Failed PV points at a claim that is gone; an Available PV without a
// claimRef is held by nobody.
func InUse(pv *v1.PersistentVolume) bool {
	switch pv.Status.Phase {
	case v1.VolumeReleased, v1.VolumeFailed:
		return false
	case v1.VolumeAvailable:
		return pv.Spec.ClaimRef != nil
	}
	return true // Bound, Pending, or a phase not written yet
}

// MarkedSince returns the time in pv's AnnNodeGone, if it has a valid one.
func MarkedSince(pv *v1.PersistentVolume) (time.Time, bool) {
	v, ok := pv.Annotations[AnnNodeGone]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// Decide says what to do with a local PV whose node is gone or not.
// releaseAfter 0 means never write off. Only PVs whose data the policy
// gives up anyway are written off: Delete and Recycle. A Retain PV is the
// admin's to decide about (it carries no provisioner finalizer, so a plain
// `kubectl delete pv` works).
func Decide(pv *v1.PersistentVolume, gone bool, now time.Time, releaseAfter time.Duration) Decision {
	_, hasAnn := pv.Annotations[AnnNodeGone]
	since, marked := MarkedSince(pv)
	d := Decision{InUse: InUse(pv)}
	switch {
	case !gone && hasAnn:
		d.Action = Unmark
		return d
	case !gone:
		return d
	case !marked:
		d.Action = Mark // also rewrites an annotation that is not a time
		return d
	case d.InUse || releaseAfter <= 0 || pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimRetain:
		return d
	}
	d.WriteOffAt = since.Add(releaseAfter)
	if !now.Before(d.WriteOffAt) {
		d.Action = WriteOff
	}
	return d
}
