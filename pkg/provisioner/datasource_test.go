package provisioner

import (
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapfake "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"
)

const (
	nfsSnapshotID = "snapshot#nfs#10.0.0.5#/export#snap-1"
	nfsVolumeID   = "nfs#10.0.0.5#/export#src"
)

// snapshotClient is a fake snapshot API holding objs.
func snapshotClient(objs ...runtime.Object) *snapfake.Clientset {
	//lint:ignore SA1019 client/v8 generates no NewClientset (it has no apply configurations)
	return snapfake.NewSimpleClientset(objs...)
}

// snapshot is VolumeSnapshot team/snap bound to content content-1, and the
// content, ready, 512Mi, with handle nfsSnapshotID.
func snapshot(modVS func(*snapshotv1.VolumeSnapshot), modContent func(*snapshotv1.VolumeSnapshotContent)) []runtime.Object {
	vs := &snapshotv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "snap", UID: "vs-uid"},
		Status:     &snapshotv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: ptr.To("content-1")},
	}
	content := &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "content-1"},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			Driver:            driverName,
			VolumeSnapshotRef: v1.ObjectReference{Namespace: "team", Name: "snap", UID: "vs-uid"},
		},
		Status: &snapshotv1.VolumeSnapshotContentStatus{
			SnapshotHandle: ptr.To(nfsSnapshotID), ReadyToUse: ptr.To(true), RestoreSize: ptr.To(int64(512 << 20)),
		},
	}
	if modVS != nil {
		modVS(vs)
	}
	if modContent != nil {
		modContent(content)
	}
	return []runtime.Object{vs, content}
}

// sourceClaim is claim team/src of class nfs-class, bound to PV pv-src
// (2Gi, handle nfsVolumeID), and that PV.
func sourceClaim(modClaim func(*v1.PersistentVolumeClaim), modPV func(*v1.PersistentVolume)) []runtime.Object {
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "src"},
		Spec:       v1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("nfs-class"), VolumeName: "pv-src"},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-src"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("2Gi")},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: driverName, VolumeHandle: nfsVolumeID}},
		},
	}
	if modClaim != nil {
		modClaim(c)
	}
	if modPV != nil {
		modPV(pv)
	}
	return []runtime.Object{c, pv}
}

// restoring is a claim of nfs-class asking for size, from the given source.
func restoring(size, group, kind, name string) *v1.PersistentVolumeClaim {
	return claim(func(c *v1.PersistentVolumeClaim) {
		c.Spec.StorageClassName = ptr.To("nfs-class")
		c.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse(size)
		var g *string
		if group != "" {
			g = &group
		}
		c.Spec.DataSourceRef = &v1.TypedObjectReference{APIGroup: g, Kind: kind, Name: name}
	}, v1.ReadWriteOnce)
}

func TestContentSource(t *testing.T) {
	tests := []struct {
		name      string
		claim     *v1.PersistentVolumeClaim
		snapshots []runtime.Object // nil: snapshots off
		kube      []runtime.Object
		want      string // the source's ID
		wantErr   string
	}{
		{name: "ready snapshot", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "snap"),
			snapshots: snapshot(nil, nil), want: nfsSnapshotID},
		{name: "snapshot through the old dataSource field", claim: claim(func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: ptr.To(snapshotGroup), Kind: kindSnapshot, Name: "snap"}
		}, v1.ReadWriteOnce), snapshots: snapshot(nil, nil), want: nfsSnapshotID},
		{name: "snapshot not ready", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "snap"),
			snapshots: snapshot(nil, func(c *snapshotv1.VolumeSnapshotContent) { c.Status.ReadyToUse = ptr.To(false) }),
			wantErr:   "not ready to use"},
		{name: "snapshot content failed", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "snap"),
			snapshots: snapshot(nil, func(c *snapshotv1.VolumeSnapshotContent) {
				c.Status.ReadyToUse = nil
				c.Status.Error = &snapshotv1.VolumeSnapshotError{Message: ptr.To("disk on fire")}
			}), wantErr: "last error: disk on fire"},
		{name: "snapshot not bound", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "snap"),
			snapshots: snapshot(func(vs *snapshotv1.VolumeSnapshot) { vs.Status = nil }, nil), wantErr: "not bound"},
		{name: "snapshot missing", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "other"),
			snapshots: snapshot(nil, nil), wantErr: "does not exist"},
		{name: "snapshot of another driver", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "snap"),
			snapshots: snapshot(nil, func(c *snapshotv1.VolumeSnapshotContent) { c.Spec.Driver = "other.csi" }),
			wantErr:   "taken by driver other.csi"},
		{name: "content bound to another snapshot", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "snap"),
			snapshots: snapshot(nil, func(c *snapshotv1.VolumeSnapshotContent) { c.Spec.VolumeSnapshotRef.Name = "theirs" }),
			wantErr:   "belongs to team/theirs"},
		{name: "claim smaller than the snapshot", claim: restoring("256Mi", snapshotGroup, kindSnapshot, "snap"),
			snapshots: snapshot(nil, nil), wantErr: "needs at least 512Mi"},
		{name: "snapshots off", claim: restoring("1Gi", snapshotGroup, kindSnapshot, "snap"),
			wantErr: "snapshots.enabled=false"},
		{name: "clone", claim: restoring("2Gi", "", kindClaim, "src"), kube: sourceClaim(nil, nil), want: nfsVolumeID},
		{name: "clone smaller than its source", claim: restoring("1Gi", "", kindClaim, "src"), kube: sourceClaim(nil, nil),
			wantErr: "holds 2Gi"},
		{name: "clone of a pending claim", claim: restoring("2Gi", "", kindClaim, "src"),
			kube:    sourceClaim(func(c *v1.PersistentVolumeClaim) { c.Status.Phase = ""; c.Spec.VolumeName = "" }, nil),
			wantErr: "Pending, not Bound"},
		{name: "clone across classes", claim: restoring("2Gi", "", kindClaim, "src"),
			kube:    sourceClaim(func(c *v1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("local-class") }, nil),
			wantErr: "must use its source's class"},
		{name: "clone of another driver's volume", claim: restoring("2Gi", "", kindClaim, "src"),
			kube:    sourceClaim(nil, func(pv *v1.PersistentVolume) { pv.Spec.CSI.Driver = "other.csi" }),
			wantErr: "not a volume of csi.stowage.io"},
		{name: "clone of a missing claim", claim: restoring("2Gi", "", kindClaim, "nope"), wantErr: "does not exist"},
		{name: "another kind", claim: restoring("1Gi", "example.com", "Backup", "b"), wantErr: `kind "Backup"`},
		{name: "another namespace", claim: func() *v1.PersistentVolumeClaim {
			c := restoring("1Gi", snapshotGroup, kindSnapshot, "snap")
			c.Spec.DataSourceRef.Namespace = ptr.To("elsewhere")
			return c
		}(), snapshots: snapshot(nil, nil), wantErr: "in another namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &sources{driverName: driverName, kube: kubefake.NewClientset(tc.kube...)}
			if tc.snapshots != nil {
				s.snapshots = snapshotClient(tc.snapshots...)
			}
			size := tc.claim.Spec.Resources.Requests[v1.ResourceStorage]
			src, err := s.contentSource(context.Background(), tc.claim, size.Value())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := src.GetSnapshot().GetSnapshotId() + src.GetVolume().GetVolumeId()
			if got != tc.want {
				t.Errorf("source %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckSourceRoot(t *testing.T) {
	snap := func(id string) *csi.VolumeContentSource {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
	}
	vol := func(id string) *csi.VolumeContentSource {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
	}
	tests := []struct {
		name          string
		src           *csi.VolumeContentSource
		backend, node string
		wantErr       string
	}{
		{"nfs snapshot into nfs", snap(nfsSnapshotID), "nfs", "", ""},
		{"local snapshot on its node", snap("snapshot#local#node-a#s1"), "local", "node-a", ""},
		{"local snapshot on another node", snap("snapshot#local#node-a#s1"), "local", "node-b", "pin the pod to it"},
		{"local snapshot into nfs", snap("snapshot#local#node-a#s1"), "nfs", "", "StorageClass of backend local"},
		{"nfs volume into local", vol(nfsVolumeID), "local", "node-a", "StorageClass of backend nfs"},
		{"local volume on another node", vol("local#node-a#pvc-1"), "local", "node-b", "on node node-a's local disk"},
		{"unreadable ID: the driver's to judge", snap("garbage"), "nfs", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSourceRoot(tc.src, tc.backend, tc.node)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// A restore reaches CreateVolume with the snapshot as its content source;
// a claim without a data source gets none.
func TestProvisionWithDataSource(t *testing.T) {
	stub := &stubController{volume: &csi.Volume{VolumeId: "nfs#10.0.0.5#/export#pvc-1", CapacityBytes: 1 << 30}}
	p := &provisioner{driverName: driverName, backend: "nfs", controller: stub,
		sources: &sources{driverName: driverName, kube: kubefake.NewClientset(), snapshots: snapshotClient(snapshot(nil, nil)...)}}
	opts := controller.ProvisionOptions{PVName: "pvc-1", StorageClass: class("nfs", nil),
		PVC: restoring("1Gi", snapshotGroup, kindSnapshot, "snap")}
	if _, _, err := p.Provision(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if got := stub.createReq.GetVolumeContentSource().GetSnapshot().GetSnapshotId(); got != nfsSnapshotID {
		t.Errorf("CreateVolume content source %v, want snapshot %s", stub.createReq.GetVolumeContentSource(), nfsSnapshotID)
	}

	opts.PVC = claim(nil, v1.ReadWriteOnce)
	if _, _, err := p.Provision(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if stub.createReq.VolumeContentSource != nil {
		t.Errorf("a claim without a data source got content source %v", stub.createReq.VolumeContentSource)
	}

	// Not ready: nothing is created, and the error says it is retried.
	stub.createReq = nil
	p.sources.snapshots = snapshotClient(snapshot(nil, func(c *snapshotv1.VolumeSnapshotContent) { c.Status.ReadyToUse = ptr.To(false) })...)
	opts.PVC = restoring("1Gi", snapshotGroup, kindSnapshot, "snap")
	if _, _, err := p.Provision(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "retrying") {
		t.Fatalf("error %v, want a not-ready error that says it retries", err)
	}
	if stub.createReq != nil {
		t.Error("CreateVolume was called for a snapshot that is not ready")
	}
}
