package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Issue 9, finding 1, in the real cluster: two NFS classes on one share whose subDir templates nest.
// A claim in another namespace named like the first namespace must neither see its volumes nor
// remove them when it is deleted.
func TestNestedTemplatesAcrossNamespaces(t *testing.T) {
	e := setup(t)
	// Cleanups run last-made first: the team's namespace goes first, then the classes, then mallory's.
	mallory := e.namespace(t, "mallory")
	team := e.namespace(t, "team")
	byNamespace := e.nfsClass(t, team, "${pvc.namespace}/${pvc.name}")
	byName := e.nfsClass(t, mallory, "${pvc.name}")

	e.createClaim(t, team, "data", byNamespace, corev1.ReadWriteMany)
	e.createPod(t, team, "owner", "echo secret > /data/secret && sleep 3600", podVolume{claim: "data", path: "/data"})
	e.waitPodReady(t, team, "owner")
	pv := e.kube(t, team).WaitBound("data")
	secret := filepath.Join(e.hostDir(t, pv), "secret")
	waiter(t, podTimeout).Eventually("the owner's file", func(context.Context) (bool, error) {
		_, err := os.Stat(secret)
		return err == nil, nil
	})

	// Mallory's claim is named like the team's namespace: its directory would be the parent of the
	// team's volume. It is refused, with an event that says why.
	e.createClaim(t, mallory, team, byName, corev1.ReadWriteMany)
	e.kube(t, mallory).WaitEvent("PersistentVolumeClaim", team, "ProvisioningFailed", "already exists", "no Stowage volume owns it")
	c, err := e.client.CoreV1().PersistentVolumeClaims(mallory).Get(context.Background(), team, metav1.GetOptions{})
	if err != nil || c.Status.Phase != corev1.ClaimPending {
		t.Fatalf("mallory's claim: %v, phase %v; want Pending", err, c.Status.Phase)
	}
	e.kube(t, mallory).DeleteClaim(team)

	// The team's volume is untouched and still works.
	e.deletePod(t, team, "owner")
	e.createPod(t, team, "again", "sleep 3600", podVolume{claim: "data", path: "/data"})
	e.waitPodReady(t, team, "again")
	if out := mustExec(t, team, "again", "", "cat /data/secret"); strings.TrimSpace(out) != "secret" {
		t.Errorf("the team's file after mallory's claim came and went: %q", out)
	}
}

// nfsClass makes an NFS class with a subDir template, deleted after the test's namespace.
func (e *env) nfsClass(t *testing.T, ns, subDir string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", ns, len(e.afterNamespace))
	policy := corev1.PersistentVolumeReclaimDelete
	binding := storagev1.VolumeBindingImmediate
	e.create(t, ns, &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name},
		Provisioner:       driverName,
		Parameters:        map[string]string{"backend": "nfs", "server": e.nfsServer, "share": "/export", "subDir": subDir},
		ReclaimPolicy:     &policy,
		VolumeBindingMode: &binding,
	})
	return name
}

// Issue 9, finding 6: a PV first made for [ReadWriteMany, ReadOnlyMany] and recycled is mounted
// read-only for a ReadOnlyMany-only claim, although kubelet passes the PV's first mode and the pod
// does not ask for readOnly.
func TestReadOnlyManyAfterRecycle(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "rox-recycle")
	class := e.reclaimClass(t, ns, "nfs", corev1.PersistentVolumeReclaimRecycle)
	e.create(t, ns, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "first"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadOnlyMany},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("32Mi")},
			},
		},
	})
	pv := e.kube(t, ns).WaitBound("first")
	t.Cleanup(func() { e.patchPVIfExists(t, pv.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`) })
	if pv.Spec.CSI.ReadOnly {
		t.Fatalf("PV %s made for a writer is read-only", pv.Name)
	}
	e.kube(t, ns).DeleteClaim("first")
	e.kube(t, ns).WaitPVPhase(pv.Name, corev1.VolumeAvailable)

	e.createClaim(t, ns, "reader", class, corev1.ReadOnlyMany)
	e.createPod(t, ns, "reader", "sleep 3600", podVolume{claim: "reader", path: "/data"})
	e.waitPodReady(t, ns, "reader")
	if got := e.kube(t, ns).WaitBound("reader"); got.Name != pv.Name {
		t.Fatalf("the ReadOnlyMany claim bound %s, want the recycled %s", got.Name, pv.Name)
	}
	out, err := execIn(ns, "reader", "", "touch /data/x")
	if err == nil || !strings.Contains(out, readOnlyFS) {
		t.Errorf("write through a ReadOnlyMany claim on a recycled RWX+ROX volume: err %v, output %q; want %q", err, out, readOnlyFS)
	}
}
