package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCapacityKeepsPodsOffFullNodes: two claims of a local class that each fit the node's base path
// but not together, each used by a pod. The first pod runs; the scheduler, reading the node plugin's
// CSIStorageCapacity, leaves the second Pending with its "did not have enough free storage" reason,
// and nothing is made for it: no selected node, no PV, no directory.
func TestCapacityKeepsPodsOffFullNodes(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "capacity")
	class := ns // one class per run, deleted after the namespace
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	del := corev1.PersistentVolumeReclaimDelete
	e.create(t, ns, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: driverName,
		Parameters:        map[string]string{"backend": "local"},
		VolumeBindingMode: &wffc, ReclaimPolicy: &del,
	})

	// What the node plugin says the node can still give this class.
	free := e.waitCapacity(t, class, func(q *resource.Quantity) bool { return q.Sign() > 0 })
	t.Logf("node %s: %s available for class %s", e.nodeName, free, class)
	// Each claim takes 60%: one fits, two do not. Whole MiB, so the sizes print plainly.
	size := resource.NewQuantity(free.Value()*3/5>>20<<20, resource.BinarySI)

	for _, name := range []string{"first", "second"} {
		e.create(t, ns, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: &class,
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: *size}},
			},
		})
	}
	e.createPod(t, ns, "first", "sleep 3600", podVolume{claim: "first", path: "/data"})
	e.waitPodReady(t, ns, "first")
	pv := e.kube(t, ns).WaitBound("first")
	before := entries(t, e.localBase)

	// The first volume's size is no longer available to others.
	left := e.waitCapacity(t, class, func(q *resource.Quantity) bool { return q.Cmp(*size) < 0 })
	t.Logf("after %s (%s): %s available", pv.Name, size, left)

	e.createPod(t, ns, "second", "sleep 3600", podVolume{claim: "second", path: "/data"})
	msg := e.kube(t, ns).WaitEvent("Pod", "second", "FailedScheduling", "did not have enough free storage")
	t.Logf("second pod: %s", msg)

	// A moment later still nothing for the second claim: the scheduler never picked a node, so
	// the provisioner never started.
	time.Sleep(5 * time.Second)
	ctx := context.Background()
	pod, err := e.client.CoreV1().Pods(ns).Get(ctx, "second", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != corev1.PodPending || pod.Spec.NodeName != "" {
		t.Errorf("second pod: phase %s on node %q, want Pending on none", pod.Status.Phase, pod.Spec.NodeName)
	}
	claim, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "second", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claim.Status.Phase != corev1.ClaimPending || claim.Spec.VolumeName != "" {
		t.Errorf("second claim: phase %s, volume %q, want Pending with none", claim.Status.Phase, claim.Spec.VolumeName)
	}
	if node, ok := claim.Annotations["volume.kubernetes.io/selected-node"]; ok {
		t.Errorf("second claim has selected node %s; the scheduler should have found none", node)
	}
	pvs, err := e.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pvs.Items {
		if ref := p.Spec.ClaimRef; ref != nil && ref.Namespace == ns && ref.Name == "second" {
			t.Errorf("PV %s was made for the second claim", p.Name)
		}
	}
	for _, name := range entries(t, e.localBase) {
		if !slices.Contains(before, name) {
			t.Errorf("%s appeared in %s while the second claim waited", name, e.localBase)
		}
	}
	if _, err := os.Stat(e.hostDir(t, pv)); err != nil {
		t.Errorf("the first volume's directory: %v", err)
	}
}

// waitCapacity waits until the node plugin's CSIStorageCapacity for class on this node satisfies ok,
// and returns its capacity.
func (e *env) waitCapacity(t *testing.T, class string, ok func(*resource.Quantity) bool) *resource.Quantity {
	t.Helper()
	var got *resource.Quantity
	waiter(t, bindTimeout).Eventually("CSIStorageCapacity of class "+class+" on node "+e.nodeName, func(ctx context.Context) (bool, error) {
		list, err := e.client.StorageV1().CSIStorageCapacities(releaseNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: "csi.storage.k8s.io/drivername=" + driverName,
		})
		if err != nil {
			return false, err
		}
		var seen []string
		for _, c := range list.Items {
			if c.StorageClassName != class || c.NodeTopology == nil || c.NodeTopology.MatchLabels["topology.stowage.io/node"] != e.nodeName {
				continue
			}
			if c.Capacity == nil {
				return false, fmt.Errorf("%s has no capacity", c.Name)
			}
			seen = append(seen, c.Name+"="+c.Capacity.String())
			got = c.Capacity
		}
		if len(seen) != 1 {
			return false, fmt.Errorf("want one object, have [%s]", strings.Join(seen, " "))
		}
		if !ok(got) {
			return false, fmt.Errorf("capacity %s", got)
		}
		return true, nil
	})
	return got
}
