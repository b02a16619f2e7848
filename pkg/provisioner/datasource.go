package provisioner

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// The kinds a claim's data source may name.
const (
	snapshotGroup = snapshotv1.GroupName // snapshot.storage.k8s.io
	kindSnapshot  = "VolumeSnapshot"
	kindClaim     = "PersistentVolumeClaim"
)

// sources resolves a claim's data source (a VolumeSnapshot to restore, or
// a claim to clone) into the content source of CreateVolume. It reads the
// API server rather than informers: restores are rare, and a snapshot's
// readiness must be read fresh.
type sources struct {
	driverName string
	kube       kubernetes.Interface
	snapshots  snapclient.Interface // nil: snapshots are not enabled
}

// dataSource is the claim's data source: dataSourceRef when set (it can
// name other kinds and namespaces), else dataSource. Nil when it has none.
func dataSource(claim *v1.PersistentVolumeClaim) (group, kind, name string, namespace *string, ok bool) {
	if r := claim.Spec.DataSourceRef; r != nil {
		return deref(r.APIGroup), r.Kind, r.Name, r.Namespace, true
	}
	if r := claim.Spec.DataSource; r != nil {
		return deref(r.APIGroup), r.Kind, r.Name, nil, true
	}
	return "", "", "", nil, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// contentSource returns what the new volume must be filled from, or nil
// for a claim without a data source. requiredBytes is the claim's request,
// which must hold the source.
func (s *sources) contentSource(ctx context.Context, claim *v1.PersistentVolumeClaim, requiredBytes int64) (*csi.VolumeContentSource, error) {
	group, kind, name, ns, ok := dataSource(claim)
	if !ok {
		return nil, nil
	}
	if ns != nil && *ns != "" && *ns != claim.Namespace {
		return nil, fmt.Errorf("claim %s/%s restores from %s %s/%s in another namespace, which Stowage does not do; "+
			"create the source in namespace %s", claim.Namespace, claim.Name, kind, *ns, name, claim.Namespace)
	}
	switch {
	case group == snapshotGroup && kind == kindSnapshot:
		return s.fromSnapshot(ctx, claim, name, requiredBytes)
	case group == "" && kind == kindClaim:
		return s.fromClaim(ctx, claim, name, requiredBytes)
	}
	return nil, fmt.Errorf("claim %s/%s has a data source of kind %q (apiGroup %q), which Stowage cannot fill a volume from; "+
		"use a VolumeSnapshot (apiGroup %s) or a PersistentVolumeClaim (no apiGroup) of the same namespace",
		claim.Namespace, claim.Name, kind, group, snapshotGroup)
}

// fromSnapshot: the claim's VolumeSnapshot, bound to a ready content of
// this driver.
func (s *sources) fromSnapshot(ctx context.Context, claim *v1.PersistentVolumeClaim, name string, requiredBytes int64) (*csi.VolumeContentSource, error) {
	ref := claim.Namespace + "/" + name
	if s.snapshots == nil {
		return nil, fmt.Errorf("claim %s/%s restores VolumeSnapshot %s, but this Stowage instance runs without snapshots "+
			"(chart value snapshots.enabled=false); enable snapshots, or remove the claim's dataSource", claim.Namespace, claim.Name, ref)
	}
	vs, err := s.snapshots.SnapshotV1().VolumeSnapshots(claim.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("claim %s/%s restores VolumeSnapshot %s, which does not exist (yet); create it, or fix the claim's dataSource",
			claim.Namespace, claim.Name, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("read VolumeSnapshot %s: %w", ref, err)
	}
	if vs.DeletionTimestamp != nil {
		return nil, fmt.Errorf("VolumeSnapshot %s is being deleted; restore from another snapshot", ref)
	}
	if vs.Status == nil || vs.Status.BoundVolumeSnapshotContentName == nil || *vs.Status.BoundVolumeSnapshotContentName == "" {
		return nil, fmt.Errorf("VolumeSnapshot %s is not bound to a VolumeSnapshotContent yet; retrying until snapshot-controller binds it "+
			"(if this lasts, check that snapshot-controller runs and the snapshot's class exists)", ref)
	}
	contentName := *vs.Status.BoundVolumeSnapshotContentName
	content, err := s.snapshots.SnapshotV1().VolumeSnapshotContents().Get(ctx, contentName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read VolumeSnapshotContent %s of VolumeSnapshot %s: %w", contentName, ref, err)
	}
	// A content names its snapshot; one that names another is not this
	// snapshot's data, whatever the snapshot's status says.
	back := content.Spec.VolumeSnapshotRef
	if back.Namespace != vs.Namespace || back.Name != vs.Name || (back.UID != "" && back.UID != vs.UID) {
		return nil, fmt.Errorf("VolumeSnapshot %s says it is bound to VolumeSnapshotContent %s, but that content belongs to %s/%s; "+
			"restore from a snapshot whose binding is intact", ref, contentName, back.Namespace, back.Name)
	}
	if content.Spec.Driver != s.driverName {
		return nil, fmt.Errorf("VolumeSnapshot %s was taken by driver %s, not %s; Stowage restores only its own snapshots",
			ref, content.Spec.Driver, s.driverName)
	}
	st := content.Status
	if st == nil || st.ReadyToUse == nil || !*st.ReadyToUse || st.SnapshotHandle == nil || *st.SnapshotHandle == "" {
		why := "no status yet"
		if st != nil && st.Error != nil && st.Error.Message != nil {
			why = "last error: " + *st.Error.Message
		} else if st != nil {
			why = "readyToUse is not true yet"
		}
		return nil, fmt.Errorf("VolumeSnapshot %s is not ready to use (VolumeSnapshotContent %s: %s); retrying until the snapshot is complete",
			ref, contentName, why)
	}
	var size int64
	if st.RestoreSize != nil {
		size = *st.RestoreSize
	} else if vs.Status.RestoreSize != nil {
		size = vs.Status.RestoreSize.Value()
	}
	if size > requiredBytes {
		return nil, fmt.Errorf("claim %s/%s asks for %s, but VolumeSnapshot %s needs at least %s; raise spec.resources.requests.storage",
			claim.Namespace, claim.Name, quantity(requiredBytes), ref, quantity(size))
	}
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: *st.SnapshotHandle},
	}}, nil
}

// fromClaim: a bound claim of the same namespace and class whose volume
// is one of ours.
func (s *sources) fromClaim(ctx context.Context, claim *v1.PersistentVolumeClaim, name string, requiredBytes int64) (*csi.VolumeContentSource, error) {
	ref := claim.Namespace + "/" + name
	src, err := s.kube.CoreV1().PersistentVolumeClaims(claim.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("claim %s/%s clones claim %s, which does not exist; fix the claim's dataSource", claim.Namespace, claim.Name, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("read claim %s: %w", ref, err)
	}
	if src.Status.Phase != v1.ClaimBound || src.Spec.VolumeName == "" {
		return nil, fmt.Errorf("claim %s/%s clones claim %s, which is %s, not Bound; retrying until it is bound",
			claim.Namespace, claim.Name, ref, phaseOf(src))
	}
	if a, b := claimClass(src), claimClass(claim); a != b {
		return nil, fmt.Errorf("claim %s/%s (StorageClass %q) clones claim %s of StorageClass %q; a clone must use its source's class",
			claim.Namespace, claim.Name, b, ref, a)
	}
	pv, err := s.kube.CoreV1().PersistentVolumes().Get(ctx, src.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read PV %s of claim %s: %w", src.Spec.VolumeName, ref, err)
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != s.driverName {
		return nil, fmt.Errorf("claim %s is bound to PV %s, which is not a volume of %s; Stowage clones only its own volumes",
			ref, pv.Name, s.driverName)
	}
	if size, ok := pv.Spec.Capacity[v1.ResourceStorage]; ok && size.Value() > requiredBytes {
		return nil, fmt.Errorf("claim %s/%s asks for %s, but its source claim %s holds %s; ask for at least that much",
			claim.Namespace, claim.Name, quantity(requiredBytes), ref, size.String())
	}
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: pv.Spec.CSI.VolumeHandle},
	}}, nil
}

// checkSourceRoot refuses a source the instance provisioning cannot copy:
// a local snapshot or volume can be copied only on its own node, by that
// node's plugin, and never into an NFS volume (nor an NFS one into a local
// volume: each backend copies within its own root).
func checkSourceRoot(src *csi.VolumeContentSource, backend, node string) error {
	var srcBackend, srcNode, what string
	switch {
	case src.GetSnapshot() != nil:
		id, err := volumeid.ParseSnapshot(src.GetSnapshot().GetSnapshotId())
		if err != nil {
			return nil // not ours to judge: the driver says what is wrong with it
		}
		srcBackend, srcNode, what = id.Backend, id.Node, "snapshot"
	case src.GetVolume() != nil:
		id, err := volumeid.Parse(src.GetVolume().GetVolumeId())
		if err != nil {
			return nil
		}
		srcBackend, srcNode, what = id.Backend, id.Node, "volume"
	default:
		return nil
	}
	if srcBackend != backend {
		return fmt.Errorf("the source %s is on a %s backend, but the claim's StorageClass makes %s volumes; "+
			"restore or clone it with a StorageClass of backend %s", what, srcBackend, backend, srcBackend)
	}
	if backend == volumeid.Local && srcNode != node {
		return fmt.Errorf("the source %s is on node %s's local disk, but the pod was scheduled to node %s; a local %s can only be "+
			"restored or cloned on its own node: pin the pod to it (nodeSelector kubernetes.io/hostname: %s) and recreate the claim",
			what, srcNode, node, what, srcNode)
	}
	return nil
}

// describeSource names a content source for logs: "snapshot <id>",
// "volume <id>", or "" for an empty volume.
func describeSource(src *csi.VolumeContentSource) string {
	switch {
	case src.GetSnapshot() != nil:
		return "snapshot " + src.GetSnapshot().GetSnapshotId()
	case src.GetVolume() != nil:
		return "volume " + src.GetVolume().GetVolumeId()
	}
	return ""
}

func phaseOf(c *v1.PersistentVolumeClaim) string {
	if c.Status.Phase == "" {
		return "Pending"
	}
	return string(c.Status.Phase)
}

func quantity(bytes int64) string {
	return resource.NewQuantity(bytes, resource.BinarySI).String()
}
