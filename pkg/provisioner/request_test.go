package provisioner

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"

	"github.com/stowage-csi/stowage/pkg/driver"
)

const driverName = "csi.stowage.io"

func TestTopologyKeyMatchesDriver(t *testing.T) {
	if topologyKey != driver.TopologyKey {
		t.Fatalf("topologyKey %q differs from driver.TopologyKey %q", topologyKey, driver.TopologyKey)
	}
}

func class(backend string, mod func(*storagev1.StorageClass)) *storagev1.StorageClass {
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	c := &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: backend + "-class"},
		Provisioner: driverName,
		Parameters:  map[string]string{"backend": backend},
	}
	if backend == "local" {
		c.VolumeBindingMode = &wffc
	} else {
		c.Parameters["server"] = "10.0.0.5"
		c.Parameters["share"] = "/export"
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func claim(mod func(*v1.PersistentVolumeClaim), modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "data", UID: "1234"},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: modes,
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestBuildRequest(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	block := v1.PersistentVolumeBlock
	tests := []struct {
		name      string
		opts      controller.ProvisionOptions
		wantErr   string
		wantModes []csi.VolumeCapability_AccessMode_Mode
		check     func(*testing.T, *csi.CreateVolumeRequest)
	}{
		{
			name: "nfs RWX and ROX",
			opts: controller.ProvisionOptions{PVName: "pvc-1234", StorageClass: class("nfs", nil),
				PVC: claim(nil, v1.ReadWriteMany, v1.ReadOnlyMany)},
			wantModes: []csi.VolumeCapability_AccessMode_Mode{
				csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
			check: func(t *testing.T, r *csi.CreateVolumeRequest) {
				want := map[string]string{
					"backend": "nfs", "server": "10.0.0.5", "share": "/export",
					"csi.storage.k8s.io/pvc/name": "data", "csi.storage.k8s.io/pvc/namespace": "team",
					"csi.storage.k8s.io/pv/name": "pvc-1234",
				}
				if len(r.Parameters) != len(want) {
					t.Errorf("parameters %v, want %v", r.Parameters, want)
				}
				for k, v := range want {
					if r.Parameters[k] != v {
						t.Errorf("parameter %s = %q, want %q", k, r.Parameters[k], v)
					}
				}
				if r.Name != "pvc-1234" || r.CapacityRange.RequiredBytes != 1<<30 || r.CapacityRange.LimitBytes != 0 {
					t.Errorf("name %q range %v", r.Name, r.CapacityRange)
				}
				if r.AccessibilityRequirements != nil {
					t.Errorf("topology %v for a claim without a selected node", r.AccessibilityRequirements)
				}
			},
		},
		{
			name: "local RWO and RWOP on the selected node, with a limit and mount options",
			opts: controller.ProvisionOptions{PVName: "pvc-1", SelectedNode: node,
				StorageClass: class("local", func(c *storagev1.StorageClass) { c.MountOptions = []string{"noatime"} }),
				PVC: claim(func(c *v1.PersistentVolumeClaim) {
					c.Spec.Resources.Limits = v1.ResourceList{v1.ResourceStorage: resource.MustParse("2Gi")}
				}, v1.ReadWriteOnce, v1.ReadWriteOncePod)},
			wantModes: []csi.VolumeCapability_AccessMode_Mode{
				csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER},
			check: func(t *testing.T, r *csi.CreateVolumeRequest) {
				if got := r.AccessibilityRequirements.GetRequisite()[0].GetSegments()[topologyKey]; got != "node-a" {
					t.Errorf("requisite node %q, want node-a", got)
				}
				if r.CapacityRange.LimitBytes != 2<<30 {
					t.Errorf("limit %d", r.CapacityRange.LimitBytes)
				}
				if f := r.VolumeCapabilities[0].GetMount().GetMountFlags(); len(f) != 1 || f[0] != "noatime" {
					t.Errorf("mount flags %v", f)
				}
			},
		},
		{
			name: "block is passed on for the driver to judge",
			opts: controller.ProvisionOptions{PVName: "pvc-1", StorageClass: class("nfs", nil),
				PVC: claim(func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeMode = &block }, v1.ReadWriteOnce)},
			wantModes: []csi.VolumeCapability_AccessMode_Mode{csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
			check: func(t *testing.T, r *csi.CreateVolumeRequest) {
				if r.VolumeCapabilities[0].GetBlock() == nil {
					t.Errorf("capability %v is not block", r.VolumeCapabilities[0])
				}
			},
		},
		{
			name: "local class with Immediate binding",
			opts: controller.ProvisionOptions{PVName: "pvc-1",
				StorageClass: class("local", func(c *storagev1.StorageClass) { c.VolumeBindingMode = nil }),
				PVC:          claim(nil, v1.ReadWriteOnce)},
			wantErr: "set volumeBindingMode: WaitForFirstConsumer",
		},
		{
			name: "no size",
			opts: controller.ProvisionOptions{PVName: "pvc-1", StorageClass: class("nfs", nil),
				PVC: claim(func(c *v1.PersistentVolumeClaim) { c.Spec.Resources.Requests = nil }, v1.ReadWriteOnce)},
			wantErr: "set spec.resources.requests.storage",
		},
		{
			name: "selector",
			opts: controller.ProvisionOptions{PVName: "pvc-1", StorageClass: class("nfs", nil),
				PVC: claim(func(c *v1.PersistentVolumeClaim) { c.Spec.Selector = &metav1.LabelSelector{} }, v1.ReadWriteOnce)},
			wantErr: "remove spec.selector",
		},
		{
			name:    "no access mode",
			opts:    controller.ProvisionOptions{PVName: "pvc-1", StorageClass: class("nfs", nil), PVC: claim(nil)},
			wantErr: "has no accessModes",
		},
		{
			name: "unknown access mode",
			opts: controller.ProvisionOptions{PVName: "pvc-1", StorageClass: class("nfs", nil),
				PVC: claim(nil, "ReadSometimes")},
			wantErr: `"ReadSometimes"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := buildRequest(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var modes []csi.VolumeCapability_AccessMode_Mode
			for _, c := range req.VolumeCapabilities {
				modes = append(modes, c.GetAccessMode().GetMode())
			}
			if len(modes) != len(tc.wantModes) {
				t.Fatalf("modes %v, want %v", modes, tc.wantModes)
			}
			for i := range modes {
				if modes[i] != tc.wantModes[i] {
					t.Errorf("mode %d = %v, want %v", i, modes[i], tc.wantModes[i])
				}
			}
			tc.check(t, req)
			if _, ok := tc.opts.StorageClass.Parameters["csi.storage.k8s.io/pv/name"]; ok {
				t.Errorf("buildRequest modified the class parameters")
			}
		})
	}
}

func TestReclaimPolicy(t *testing.T) {
	retain := v1.PersistentVolumeReclaimRetain
	tests := []struct {
		name    string
		class   *storagev1.StorageClass
		want    v1.PersistentVolumeReclaimPolicy
		wantErr string
	}{
		{"default", class("nfs", nil), v1.PersistentVolumeReclaimDelete, ""},
		{"class field", class("nfs", func(c *storagev1.StorageClass) { c.ReclaimPolicy = &retain }), retain, ""},
		{"Recycle parameter wins", class("local", func(c *storagev1.StorageClass) {
			c.ReclaimPolicy = &retain
			c.Parameters["reclaimPolicy"] = "Recycle"
		}), v1.PersistentVolumeReclaimRecycle, ""},
		{"other parameter value", class("nfs", func(c *storagev1.StorageClass) { c.Parameters["reclaimPolicy"] = "Retain" }),
			"", "only Recycle goes here"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := reclaimPolicy(tc.class)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("reclaimPolicy = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
