package e2e

// Every reclaim policy on both backends, through real pods, checked where the data lives: the NFS
// export directory or the node's local base path, both on this host.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// reclaimClass makes a StorageClass for one backend and policy. Recycle travels as a parameter (a
// StorageClass accepts only Delete or Retain), with Retain on the class, as the chart renders it.
func (e *env) reclaimClass(t *testing.T, ns, backend string, policy corev1.PersistentVolumeReclaimPolicy) string {
	t.Helper()
	name := fmt.Sprintf("%s-%s-%s", ns, backend, strings.ToLower(string(policy)))
	classPolicy := policy
	params := map[string]string{"backend": backend}
	binding := storagev1.VolumeBindingWaitForFirstConsumer
	if backend == "nfs" {
		params["server"] = e.nfsServer
		params["share"] = "/export"
		params["dirMode"] = "0777"
		binding = storagev1.VolumeBindingImmediate
	}
	if policy == corev1.PersistentVolumeReclaimRecycle {
		params["reclaimPolicy"] = string(policy)
		classPolicy = corev1.PersistentVolumeReclaimRetain
	}
	e.create(t, ns, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name},
		Provisioner:       driverName,
		Parameters:        params,
		ReclaimPolicy:     &classPolicy,
		VolumeBindingMode: &binding,
	})
	return name
}

// writeThroughPod provisions a claim of class, has a pod write a file, a hidden file and a nested one
// into it, and returns the PV; the pod and claim are deleted again, which releases the PV.
func (e *env) writeThroughPod(t *testing.T, ns, class, claim string) (*corev1.PersistentVolume, string) {
	t.Helper()
	e.createClaim(t, ns, claim, class, corev1.ReadWriteOnce)
	e.createPod(t, ns, claim+"-writer", "echo data > /data/file && touch /data/.hidden && mkdir -p /data/a/b && echo x > /data/a/b/c && sleep 3600",
		podVolume{claim: claim, path: "/data"})
	e.waitPodReady(t, ns, claim+"-writer")
	pv := e.kube(t, ns).WaitBound(claim)
	dir := e.hostDir(t, pv)
	waiter(t, podTimeout).Eventually("the pod's files in "+dir, func(context.Context) (bool, error) {
		_, err := os.Stat(filepath.Join(dir, "a", "b", "c"))
		return err == nil, err
	})
	e.deletePod(t, ns, claim+"-writer")
	e.kube(t, ns).DeleteClaim(claim)
	return pv, dir
}

func TestReclaimPolicies(t *testing.T) {
	e := setup(t)
	for _, backend := range []string{"nfs", "local"} {
		t.Run(backend+"/Delete", func(t *testing.T) {
			ns := e.namespace(t, "delete")
			class := e.reclaimClass(t, ns, backend, corev1.PersistentVolumeReclaimDelete)
			pv, dir := e.writeThroughPod(t, ns, class, "data")
			e.kube(t, ns).WaitPVGone(pv.Name)
			assertGone(t, dir)
		})

		t.Run(backend+"/Retain", func(t *testing.T) {
			ns := e.namespace(t, "retain")
			class := e.reclaimClass(t, ns, backend, corev1.PersistentVolumeReclaimRetain)
			pv, dir := e.writeThroughPod(t, ns, class, "data")
			// The admin's job afterwards: the PV object, then the data by hand.
			t.Cleanup(func() { os.RemoveAll(dir) })
			e.afterNamespace = append(e.afterNamespace, func() { e.deletePV(t, pv.Name) })

			released := e.kube(t, ns).WaitPVPhase(pv.Name, corev1.VolumeReleased)
			if released.Spec.ClaimRef == nil || released.Spec.ClaimRef.Name != "data" {
				t.Errorf("Released PV's claimRef %+v, want the deleted claim", released.Spec.ClaimRef)
			}
			if data, err := os.ReadFile(filepath.Join(dir, "file")); err != nil || string(data) != "data\n" {
				t.Errorf("Retain kept %q, %v; want the pod's file", data, err)
			}
			// Deleting a Retain PV leaves the data too.
			e.deletePV(t, pv.Name)
			if _, err := os.Stat(filepath.Join(dir, "a", "b", "c")); err != nil {
				t.Errorf("deleting the Retain PV removed data: %v", err)
			}
		})

		t.Run(backend+"/Recycle", func(t *testing.T) {
			ns := e.namespace(t, "recycle")
			class := e.reclaimClass(t, ns, backend, corev1.PersistentVolumeReclaimRecycle)
			pv, dir := e.writeThroughPod(t, ns, class, "first")
			if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRecycle {
				t.Fatalf("PV %s has policy %s, want Recycle from the class parameter", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)
			}
			// However the test ends, let the PV go with its claim.
			t.Cleanup(func() { e.patchPVIfExists(t, pv.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`) })

			available := e.kube(t, ns).WaitPVPhase(pv.Name, corev1.VolumeAvailable)
			if available.Spec.ClaimRef != nil {
				t.Errorf("Available PV still refers to %+v", available.Spec.ClaimRef)
			}
			if got := entries(t, dir); len(got) != 0 {
				t.Errorf("recycled volume %s still holds %v", dir, got)
			}

			// The next claim of the class binds the recycled PV, and its pod finds it empty.
			e.createClaim(t, ns, "second", class, corev1.ReadWriteOnce)
			e.createPod(t, ns, "reader", "ls -A /data > /tmp/ls; sleep 3600", podVolume{claim: "second", path: "/data"})
			e.waitPodReady(t, ns, "reader")
			if got := e.kube(t, ns).WaitBound("second"); got.Name != pv.Name {
				t.Errorf("second claim bound %s, want the recycled %s", got.Name, pv.Name)
			}
			if out := mustExec(t, ns, "reader", "", "cat /tmp/ls"); strings.TrimSpace(out) != "" {
				t.Errorf("the second user sees %q in the recycled volume", out)
			}

			// End the cycle: Delete while bound, then release.
			e.patchPV(t, pv.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`)
			e.deletePod(t, ns, "reader")
			e.kube(t, ns).DeleteClaim("second")
			e.kube(t, ns).WaitPVGone(pv.Name)
			assertGone(t, dir)
		})
	}
}
