package provisioner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"
)

// stubController answers CreateVolume/DeleteVolume like a driver would.
type stubController struct {
	csi.UnimplementedControllerServer
	volume    *csi.Volume
	err       error
	createReq *csi.CreateVolumeRequest
	deleted   []string
}

func (s *stubController) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	s.createReq = req
	if s.err != nil {
		return nil, s.err
	}
	return &csi.CreateVolumeResponse{Volume: s.volume}, nil
}

func (s *stubController) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	s.deleted = append(s.deleted, req.VolumeId)
	if s.err != nil {
		return nil, s.err
	}
	return &csi.DeleteVolumeResponse{}, nil
}

func lister(t *testing.T, classes ...*storagev1.StorageClass) storagelisters.StorageClassLister {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, c := range classes {
		if err := idx.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	return storagelisters.NewStorageClassLister(idx)
}

func TestShouldProvision(t *testing.T) {
	nfsClass, localClass := class("nfs", nil), class("local", nil)
	other := class("nfs", func(c *storagev1.StorageClass) { c.Name = "other"; c.Provisioner = "other.csi" })
	classes := lister(t, nfsClass, localClass, other)
	claimFor := func(className, node string) *v1.PersistentVolumeClaim {
		return claim(func(c *v1.PersistentVolumeClaim) {
			c.Spec.StorageClassName = &className
			if node != "" {
				c.Annotations = map[string]string{annSelectedNode: node}
			}
		}, v1.ReadWriteOnce)
	}
	controllerP := &provisioner{driverName: driverName, backend: "nfs", classes: classes}
	nodeA := &provisioner{driverName: driverName, backend: "local", nodeName: "node-a", classes: classes}
	tests := []struct {
		name  string
		claim *v1.PersistentVolumeClaim
		// who takes it
		controller, nodeA bool
	}{
		{"nfs claim", claimFor("nfs-class", ""), true, false},
		{"local claim on node-a", claimFor("local-class", "node-a"), false, true},
		{"local claim on node-b", claimFor("local-class", "node-b"), false, false},
		// Nobody else will ever take it, so the controller explains why.
		{"local claim without a node", claimFor("local-class", ""), true, false},
		{"another provisioner's class", claimFor("other", ""), false, false},
		{"missing class", claimFor("nope", ""), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if got := controllerP.ShouldProvision(ctx, tc.claim); got != tc.controller {
				t.Errorf("controller takes it: %v, want %v", got, tc.controller)
			}
			if got := nodeA.ShouldProvision(ctx, tc.claim); got != tc.nodeA {
				t.Errorf("node-a takes it: %v, want %v", got, tc.nodeA)
			}
		})
	}
}

func TestOwns(t *testing.T) {
	controllerP := &provisioner{backend: "nfs"}
	nodeA := &provisioner{backend: "local", nodeName: "node-a"}
	tests := []struct {
		handle            string
		controller, nodeA bool
	}{
		{"nfs#10.0.0.5#/export#pvc-1", true, false},
		{"local#node-a#pvc-1", false, true},
		{"local#node-b#pvc-1", false, false},
		{"garbage", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.handle, func(t *testing.T) {
			if got := controllerP.Owns(tc.handle); got != tc.controller {
				t.Errorf("controller owns: %v, want %v", got, tc.controller)
			}
			if got := nodeA.Owns(tc.handle); got != tc.nodeA {
				t.Errorf("node-a owns: %v, want %v", got, tc.nodeA)
			}
		})
	}
}

func TestProvision(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	recycle := class("nfs", func(c *storagev1.StorageClass) { c.Parameters["reclaimPolicy"] = "Recycle" })
	tests := []struct {
		name      string
		opts      controller.ProvisionOptions
		stub      *stubController
		wantState controller.ProvisioningState
		wantErr   string
		check     func(*testing.T, *v1.PersistentVolume)
	}{
		{
			name: "nfs ROX: read-only PV with what the backend provided",
			opts: controller.ProvisionOptions{PVName: "pvc-1", StorageClass: recycle, PVC: claim(nil, v1.ReadOnlyMany)},
			stub: &stubController{volume: &csi.Volume{VolumeId: "nfs#10.0.0.5#/export#pvc-1", CapacityBytes: 2 << 30,
				VolumeContext: map[string]string{"backend": "nfs"}}},
			wantState: controller.ProvisioningFinished,
			check: func(t *testing.T, pv *v1.PersistentVolume) {
				csiSrc := pv.Spec.CSI
				if csiSrc.Driver != driverName || csiSrc.VolumeHandle != "nfs#10.0.0.5#/export#pvc-1" ||
					!csiSrc.ReadOnly || csiSrc.VolumeAttributes["backend"] != "nfs" {
					t.Errorf("spec.csi = %+v", csiSrc)
				}
				if q := pv.Spec.Capacity[v1.ResourceStorage]; q.String() != "2Gi" {
					t.Errorf("capacity %s, want 2Gi", q.String())
				}
				if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRecycle {
					t.Errorf("policy %s", pv.Spec.PersistentVolumeReclaimPolicy)
				}
				if pv.Spec.NodeAffinity != nil {
					t.Errorf("nodeAffinity on an NFS volume: %+v", pv.Spec.NodeAffinity)
				}
			},
		},
		{
			name: "local RWO: pinned to its node, writable",
			opts: controller.ProvisionOptions{PVName: "pvc-2", StorageClass: class("local", nil), SelectedNode: node,
				PVC: claim(nil, v1.ReadWriteOnce, v1.ReadOnlyMany)},
			stub: &stubController{volume: &csi.Volume{VolumeId: "local#node-a#pvc-2", CapacityBytes: 1 << 30,
				AccessibleTopology: []*csi.Topology{{Segments: map[string]string{topologyKey: "node-a"}}}}},
			wantState: controller.ProvisioningFinished,
			check: func(t *testing.T, pv *v1.PersistentVolume) {
				if pv.Spec.CSI.ReadOnly {
					t.Errorf("read-only although the claim may write")
				}
				terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
				if len(terms) != 1 || terms[0].MatchExpressions[0].Key != topologyKey ||
					terms[0].MatchExpressions[0].Values[0] != "node-a" {
					t.Errorf("nodeAffinity terms %+v", terms)
				}
				if len(pv.Spec.AccessModes) != 2 {
					t.Errorf("access modes %v", pv.Spec.AccessModes)
				}
			},
		},
		{
			name:      "driver refuses: final, message kept",
			opts:      controller.ProvisionOptions{PVName: "pvc-3", StorageClass: class("local", nil), SelectedNode: node, PVC: claim(nil, v1.ReadWriteMany)},
			stub:      &stubController{err: status.Error(codes.InvalidArgument, "access mode ReadWriteMany is not supported by the local backend")},
			wantState: controller.ProvisioningFinished,
			wantErr:   "access mode ReadWriteMany is not supported by the local backend (InvalidArgument)",
		},
		{
			name:      "node full: reschedule",
			opts:      controller.ProvisionOptions{PVName: "pvc-4", StorageClass: class("local", nil), SelectedNode: node, PVC: claim(nil, v1.ReadWriteOnce)},
			stub:      &stubController{err: status.Error(codes.ResourceExhausted, "only 10 bytes available")},
			wantState: controller.ProvisioningReschedule,
			wantErr:   "only 10 bytes available",
		},
		{
			name:      "server unreachable: may still finish",
			opts:      controller.ProvisionOptions{PVName: "pvc-5", StorageClass: class("nfs", nil), PVC: claim(nil, v1.ReadWriteOnce)},
			stub:      &stubController{err: status.Error(codes.Unavailable, "cannot reach NFS server 10.0.0.5")},
			wantState: controller.ProvisioningInBackground,
			wantErr:   "cannot reach NFS server",
		},
		{
			name: "bad class: driver never called",
			opts: controller.ProvisionOptions{PVName: "pvc-6", PVC: claim(nil, v1.ReadWriteOnce),
				StorageClass: class("nfs", func(c *storagev1.StorageClass) { c.Parameters["reclaimPolicy"] = "Keep" })},
			stub:      &stubController{err: errors.New("must not be called")},
			wantState: controller.ProvisioningFinished,
			wantErr:   "only Recycle goes here",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &provisioner{driverName: driverName, backend: "nfs", controller: tc.stub}
			pv, state, err := p.Provision(context.Background(), tc.opts)
			if state != tc.wantState {
				t.Errorf("state %s, want %s", state, tc.wantState)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(tc.name, "never called") && tc.stub.createReq != nil {
					t.Errorf("CreateVolume was called")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pv.Name != tc.opts.PVName {
				t.Errorf("PV name %q, want %q", pv.Name, tc.opts.PVName)
			}
			tc.check(t, pv)
		})
	}
}

func TestDelete(t *testing.T) {
	pv := func(driver, handle string) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Spec: v1.PersistentVolumeSpec{
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: handle}}}}
	}
	tests := []struct {
		name        string
		pv          *v1.PersistentVolume
		driverErr   error
		wantDeleted bool
		wantIgnored bool
		wantErr     bool
	}{
		{"ours", pv(driverName, "local#node-a#pvc-1"), nil, true, false, false},
		{"already gone", pv(driverName, "local#node-a#pvc-1"), status.Error(codes.NotFound, "gone"), true, false, false},
		{"driver fails", pv(driverName, "local#node-a#pvc-1"), status.Error(codes.Internal, "EIO"), true, false, true},
		{"another node's", pv(driverName, "local#node-b#pvc-1"), nil, false, true, true},
		{"another driver's", pv("other.csi", "local#node-a#pvc-1"), nil, false, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub := &stubController{err: tc.driverErr}
			p := &provisioner{driverName: driverName, backend: "local", nodeName: "node-a", controller: stub}
			err := p.Delete(context.Background(), tc.pv)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error: %v", err, tc.wantErr)
			}
			var ignored *controller.IgnoredError
			if errors.As(err, &ignored) != tc.wantIgnored {
				t.Errorf("ignored: %v, want %v", errors.As(err, &ignored), tc.wantIgnored)
			}
			if (len(stub.deleted) == 1) != tc.wantDeleted {
				t.Errorf("DeleteVolume calls %v", stub.deleted)
			}
		})
	}
}
