package e2e

// Ephemeral volumes, both kinds: inline CSI volumes (the node plugin makes and removes them with the
// pod, no claim) and generic ephemeral volumes (a claim template in the pod, through the provisioner).

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// inlineDir is where the node plugin keeps an inline volume on this host: kubelet names the volume
// csi-<sha256 of pod UID and volume name>, and the plugin puts it under ephemeral/.
func (e *env) inlineDir(pod *corev1.Pod, volume string) string {
	return filepath.Join(e.localBase, "ephemeral", fmt.Sprintf("csi-%x", sha256.Sum256([]byte(string(pod.UID)+volume))))
}

// inlineRecord returns the record that names pod, or nil.
func (e *env) inlineRecord(t *testing.T, pod *corev1.Pod) map[string]any {
	t.Helper()
	links, err := filepath.Glob(filepath.Join(e.localBase, ".stowage", "vol-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		data, err := os.Readlink(l)
		if err != nil {
			continue // removed meanwhile
		}
		var rec map[string]any
		if json.Unmarshal([]byte(data), &rec) == nil && rec["pod"] == string(pod.UID) {
			return rec
		}
	}
	return nil
}

// TestExampleScratchSpace applies examples/scratch-space: two containers share an inline volume of
// 64Mi, which is made with a record naming the pod and removed with the pod.
func TestExampleScratchSpace(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "scratch")
	e.apply(t, ns, "scratch-space/pod.yaml")
	pod := e.waitPodReady(t, ns, "scratch-space")
	e.waitLogs(t, ns, "scratch-space", "producer", "holding: 0 files", "produced 5 parts")
	e.waitLogs(t, ns, "scratch-space", "consumer", "consumed 5242880 bytes from 5 parts")

	dir := e.inlineDir(pod, "scratch")
	if got := entries(t, dir); len(got) != 7 {
		t.Errorf("%s holds %v, want the 5 parts and 2 markers", dir, got)
	}
	rec := e.inlineRecord(t, pod)
	if rec == nil || rec["capacityBytes"] != float64(64<<20) || !strings.HasPrefix(rec["dir"].(string), "ephemeral/") {
		t.Errorf("record of the pod's volume = %v, want one for ephemeral/... of 64Mi", rec)
	}

	// Where the base path has project quotas the pod sees 64Mi and cannot write past it.
	kib := strings.TrimSpace(mustExec(t, ns, "scratch-space", "producer", "df -k /scratch | awk 'NR==2 {print $2}'"))
	if kib == strconv.Itoa(64<<10) {
		out, err := execIn(ns, "scratch-space", "producer", "dd if=/dev/zero of=/scratch/big bs=1M count=80")
		if err == nil || !strings.Contains(out, "No space left on device") {
			t.Errorf("80 MiB into a 64 MiB inline volume: err %v, output %q; want No space left on device", err, out)
		}
		mustExec(t, ns, "scratch-space", "producer", "rm -f /scratch/big")
	} else {
		t.Logf("the local base path has no project quotas (df shows %s KiB): size not enforced, not checked", kib)
	}

	// NodeGetVolumeStats: kubelet reports the volume's size as its capacity.
	waiter(t, podTimeout).Eventually("kubelet's stats of the inline volume", func(ctx context.Context) (bool, error) {
		capacity, err := e.volumeCapacity(ctx, pod, "scratch")
		if err != nil {
			return false, err
		}
		return capacity == 64<<20, fmt.Errorf("capacity %d", capacity)
	})

	e.deletePod(t, ns, "scratch-space")
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after its pod is gone (%v)", dir, err)
	}
	if rec := e.inlineRecord(t, pod); rec != nil {
		t.Errorf("the record of the deleted pod's volume is still there: %v", rec)
	}

	// A new pod starts with an empty scratch space.
	e.apply(t, ns, "scratch-space/pod.yaml")
	e.waitPodReady(t, ns, "scratch-space")
	e.waitLogs(t, ns, "scratch-space", "producer", "holding: 0 files")
}

// volumeCapacity reads a pod volume's capacity from kubelet's stats summary.
func (e *env) volumeCapacity(ctx context.Context, pod *corev1.Pod, volume string) (uint64, error) {
	raw, err := e.client.CoreV1().RESTClient().Get().Resource("nodes").Name(pod.Spec.NodeName).
		SubResource("proxy", "stats", "summary").DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	var summary struct {
		Pods []struct {
			PodRef  struct{ UID string }
			Volumes []struct {
				Name          string
				CapacityBytes *uint64
			} `json:"volume"`
		}
	}
	if err := json.Unmarshal(raw, &summary); err != nil {
		return 0, err
	}
	for _, p := range summary.Pods {
		if p.PodRef.UID != string(pod.UID) {
			continue
		}
		for _, v := range p.Volumes {
			if v.Name == volume && v.CapacityBytes != nil {
				return *v.CapacityBytes, nil
			}
		}
	}
	return 0, fmt.Errorf("no stats for volume %s of pod %s yet", volume, pod.Name)
}

func busyboxPod(name string, vol corev1.VolumeSource) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "c", Image: "docker.io/library/busybox:1.37", ImagePullPolicy: corev1.PullIfNotPresent,
				Command:      []string{"sh", "-c", "trap 'exit 0' TERM; echo hi > /scratch/hi; while true; do sleep 1; done"},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
			}},
			Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: vol}},
		},
	}
}

func inline(attrs map[string]string) corev1.VolumeSource {
	return corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: driverName, VolumeAttributes: attrs}}
}

// TestInlineEphemeralRefused: bad attributes keep the pod from starting, with an event that says why,
// and leave nothing on the node.
func TestInlineEphemeralRefused(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "inline-bad")
	for _, tt := range []struct {
		pod   string
		attrs map[string]string
		want  string
	}{
		{"unknown-key", map[string]string{"size": "64Mi", "backend": "nfs"}, "backend is not known"},
		{"not-a-size", map[string]string{"size": "lots"}, "not a Kubernetes quantity"},
		{"too-big", map[string]string{"size": "1Ei"}, "more bytes were asked for"},
	} {
		e.create(t, ns, busyboxPod(tt.pod, inline(tt.attrs)))
		e.kube(t, ns).WaitEvent("Pod", tt.pod, "FailedMount", tt.want)
		p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), tt.pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(e.inlineDir(p, "scratch")); !os.IsNotExist(err) {
			t.Errorf("pod %s: a refused inline volume left %s (%v)", tt.pod, e.inlineDir(p, "scratch"), err)
		}
		e.deletePod(t, ns, tt.pod)
	}
}

// TestGenericEphemeral: a claim template in the pod gives a local claim owned by the pod; deleting
// the pod deletes the claim, the PV and the directory.
func TestGenericEphemeral(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "generic")
	class := "stowage-local"
	pod := busyboxPod("generic", corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
		VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}},
		}},
	}})
	e.create(t, ns, pod)
	running := e.waitPodRunning(t, ns, "generic")
	pv := e.kube(t, ns).WaitBound("generic-scratch") // <pod>-<volume>, owned by the pod
	dir := e.hostDir(t, pv)
	waiter(t, podTimeout).Eventually("the pod's file in "+dir, func(context.Context) (bool, error) {
		_, err := os.Stat(filepath.Join(dir, "hi"))
		return err == nil, err
	})
	claim, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), "generic-scratch", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(claim.OwnerReferences) != 1 || claim.OwnerReferences[0].UID != running.UID {
		t.Errorf("claim owners %v, want the pod %s", claim.OwnerReferences, running.UID)
	}

	e.deletePod(t, ns, "generic")
	waiter(t, bindTimeout).WaitGone("claim generic-scratch", func(ctx context.Context) error {
		_, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "generic-scratch", metav1.GetOptions{})
		return err
	})
	e.kube(t, ns).WaitPVGone(pv.Name)
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there after its pod, claim and PV are gone (%v)", dir, err)
	}
}

// waitPodRunning waits until the pod runs (it has no readiness probe) and returns it.
func (e *env) waitPodRunning(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waiter(t, podTimeout).Eventually("pod "+ns+"/"+name+" Running", func(ctx context.Context) (bool, error) {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return p.Status.Phase == corev1.PodRunning, fmt.Errorf("phase %s", p.Status.Phase)
	})
	return pod
}
