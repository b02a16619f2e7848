package e2e

// Every access mode on every backend, through real pods: what a backend can honour is provisioned and
// behaves as the mode says; what it cannot is refused at provisioning with an event that says why.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const busybox = "docker.io/library/busybox:1.37"

func TestAccessModes(t *testing.T) {
	e := setup(t)
	tests := []struct {
		class string
		mode  corev1.PersistentVolumeAccessMode
		// check runs against a Bound claim; empty means the mode must be refused.
		check func(t *testing.T, e *env, ns, claim string)
	}{
		{"stowage-nfs", corev1.ReadWriteOnce, checkWriteRead},
		{"stowage-nfs", corev1.ReadWriteOncePod, checkWriteRead},
		{"stowage-nfs", corev1.ReadWriteMany, checkShared},
		{"stowage-nfs", corev1.ReadOnlyMany, checkReadOnly},
		{"stowage-local", corev1.ReadWriteOnce, checkShared},
		{"stowage-local", corev1.ReadWriteOncePod, checkWriteRead},
		{"stowage-local", corev1.ReadWriteMany, nil},
		{"stowage-local", corev1.ReadOnlyMany, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s", tc.class, tc.mode), func(t *testing.T) {
			ns := e.namespace(t, "mode")
			e.createClaim(t, ns, "data", tc.class, tc.mode)
			if tc.check == nil {
				// A local class waits for the first consumer, so the refusal comes once a pod is scheduled.
				e.createPod(t, ns, "user", "sleep 3600", podVolume{claim: "data", path: "/data"})
				msg := e.kube(t, ns).WaitEvent("PersistentVolumeClaim", "data", "ProvisioningFailed", string(tc.mode), "NFS")
				t.Logf("refused as expected: %s", msg)
				c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), "data", metav1.GetOptions{})
				if err != nil || c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" {
					t.Errorf("refused claim: %v, phase %s, volume %q; want Pending with no volume", err, c.Status.Phase, c.Spec.VolumeName)
				}
				return
			}
			tc.check(t, e, ns, "data")
			pv := e.kube(t, ns).PV(claimVolume(t, e, ns, "data"))
			if len(pv.Spec.AccessModes) != 1 || pv.Spec.AccessModes[0] != tc.mode {
				t.Errorf("PV %s has modes %v, want [%s]", pv.Name, pv.Spec.AccessModes, tc.mode)
			}
		})
	}
}

// checkWriteRead: one pod writes and reads back.
func checkWriteRead(t *testing.T, e *env, ns, claim string) {
	e.createPod(t, ns, "writer", "sleep 3600", podVolume{claim: claim, path: "/data"})
	e.waitPodReady(t, ns, "writer")
	e.kube(t, ns).WaitBound(claim)
	if out := mustExec(t, ns, "writer", "", "echo hello > /data/f && cat /data/f"); strings.TrimSpace(out) != "hello" {
		t.Errorf("read back %q, want hello", out)
	}
}

// checkShared: two pods use the volume at once and each sees what the other wrote.
func checkShared(t *testing.T, e *env, ns, claim string) {
	e.createPod(t, ns, "a", "sleep 3600", podVolume{claim: claim, path: "/data"})
	e.createPod(t, ns, "b", "sleep 3600", podVolume{claim: claim, path: "/data"})
	e.waitPodReady(t, ns, "a")
	e.waitPodReady(t, ns, "b")
	e.kube(t, ns).WaitBound(claim)
	mustExec(t, ns, "a", "", "echo from-a > /data/a")
	mustExec(t, ns, "b", "", "echo from-b > /data/b")
	if out := mustExec(t, ns, "a", "", "cat /data/b"); strings.TrimSpace(out) != "from-b" {
		t.Errorf("a reads %q from b's file", out)
	}
	if out := mustExec(t, ns, "b", "", "cat /data/a"); strings.TrimSpace(out) != "from-a" {
		t.Errorf("b reads %q from a's file", out)
	}
}

// checkReadOnly: a pod that does not ask for readOnly still cannot write; reading works.
func checkReadOnly(t *testing.T, e *env, ns, claim string) {
	e.createPod(t, ns, "reader", "sleep 3600", podVolume{claim: claim, path: "/data"})
	e.waitPodReady(t, ns, "reader")
	pv := e.kube(t, ns).WaitBound(claim)
	mustExec(t, ns, "reader", "", "ls -la /data")
	out, err := execIn(ns, "reader", "", "touch /data/x")
	if err == nil || !strings.Contains(out, readOnlyFS) {
		t.Errorf("write to a ReadOnlyMany volume: err %v, output %q; want %q", err, out, readOnlyFS)
	}
	if got := entries(t, e.hostDir(t, pv)); len(got) != 0 {
		t.Errorf("the ROX volume's directory holds %v after the refused write", got)
	}
}

func claimVolume(t *testing.T, e *env, ns, claim string) string {
	t.Helper()
	c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), claim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Spec.VolumeName
}

// createClaim makes a 32Mi claim.
func (e *env) createClaim(t *testing.T, ns, name, class string, mode corev1.PersistentVolumeAccessMode) {
	t.Helper()
	e.create(t, ns, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{mode},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("32Mi")},
			},
		},
	})
}

type podVolume struct {
	claim, path string
	readOnly    bool
}

// createPod starts a busybox pod running script with the claims mounted.
func (e *env) createPod(t *testing.T, ns, name, script string, vols ...podVolume) {
	t.Helper()
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name:            "c",
				Image:           busybox,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"sh", "-c", script},
			}},
		},
	}
	for i, v := range vols {
		vol := fmt.Sprintf("v%d", i)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: vol,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: v.claim, ReadOnly: v.readOnly,
			}},
		})
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{
			Name: vol, MountPath: v.path, ReadOnly: v.readOnly,
		})
	}
	e.create(t, ns, pod)
}
