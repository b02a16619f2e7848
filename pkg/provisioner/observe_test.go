package provisioner

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"

	"github.com/stowage-csi/stowage/pkg/metrics"
)

// operations reads stowage_operations_total{operation,result}.
func operations(_ *testing.T, operation, result string) float64 {
	return metrics.Count(operation, result)
}

func TestProvisionAndDeleteAreCounted(t *testing.T) {
	ctx := context.Background()
	okBefore, fullBefore := operations(t, "provision", "OK"), operations(t, "provision", "ResourceExhausted")
	opts := controller.ProvisionOptions{PVName: "pvc-m", StorageClass: class("nfs", nil), PVC: claim(nil, v1.ReadWriteOnce)}
	ok := &provisioner{driverName: driverName, backend: "nfs",
		controller: &stubController{volume: &csi.Volume{VolumeId: "nfs#10.0.0.5#/export#pvc-m", CapacityBytes: 1 << 30}}}
	if _, _, err := ok.Provision(ctx, opts); err != nil {
		t.Fatal(err)
	}
	full := &provisioner{driverName: driverName, backend: "nfs",
		controller: &stubController{err: status.Error(codes.ResourceExhausted, "share full")}}
	if _, _, err := full.Provision(ctx, opts); err == nil {
		t.Fatal("a full share provisioned")
	}
	if got := operations(t, "provision", "OK") - okBefore; got != 1 {
		t.Errorf("provision OK went up by %v, want 1", got)
	}
	if got := operations(t, "provision", "ResourceExhausted") - fullBefore; got != 1 {
		t.Errorf("provision ResourceExhausted went up by %v, want 1", got)
	}

	pv := func(handle string) *v1.PersistentVolume {
		return &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-m"}, Spec: v1.PersistentVolumeSpec{
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{Driver: driverName, VolumeHandle: handle}}}}
	}
	node := &provisioner{driverName: driverName, backend: "local", nodeName: "node-a", controller: &stubController{}}
	deletedBefore := operations(t, "delete", "OK")
	if err := node.Delete(ctx, pv("local#node-a#pvc-m")); err != nil {
		t.Fatal(err)
	}
	// Another node's volume is not this instance's operation.
	if err := node.Delete(ctx, pv("local#node-b#pvc-m")); err == nil {
		t.Fatal("deleted another node's volume")
	}
	if got := operations(t, "delete", "OK") - deletedBefore; got != 1 {
		t.Errorf("delete OK went up by %v, want 1 (the ignored volume must not count)", got)
	}
}
