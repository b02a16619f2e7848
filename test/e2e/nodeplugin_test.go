package e2e

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const nodeSelector = "app.kubernetes.io/instance=" + releaseName + ",app.kubernetes.io/component=node"

// The node plugin pod is deleted while a pod uses an NFS and a local volume: the DaemonSet
// recreates it, the pod's mounts keep working, and the new plugin can unmount them afterwards.
func TestNodePluginRestart(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "restart")
	e.createClaim(t, ns, "shared", "stowage-nfs", corev1.ReadWriteMany)
	e.createClaim(t, ns, "disk", "stowage-local", corev1.ReadWriteOnce)
	e.createPod(t, ns, "user", "sleep 3600",
		podVolume{claim: "shared", path: "/nfs"}, podVolume{claim: "disk", path: "/local"})
	e.waitPodReady(t, ns, "user")
	mustExec(t, ns, "user", "", "echo before > /nfs/f && echo before > /local/f")

	old := e.nodePluginPod(t, "")
	if err := e.client.CoreV1().Pods(releaseNamespace).Delete(context.Background(), old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete node plugin pod %s: %v", old.Name, err)
	}
	e.waitPodGone(t, releaseNamespace, old.Name)
	renewed := e.nodePluginPod(t, old.UID)
	e.waitPodReady(t, releaseNamespace, renewed.Name)

	// The using pod's mounts outlived the plugin that made them.
	for _, dir := range []string{"/nfs", "/local"} {
		out := mustExec(t, ns, "user", "", "cat "+dir+"/f && echo after >> "+dir+"/f && cat "+dir+"/f")
		if got := strings.Fields(out); len(got) != 3 || got[0] != "before" || got[2] != "after" {
			t.Errorf("%s after the plugin restart: %q, want before, then before+after", dir, out)
		}
	}
	// A second pod gets the same volumes through the new plugin, and sees the data.
	e.createPod(t, ns, "second", "sleep 3600", podVolume{claim: "shared", path: "/nfs"}, podVolume{claim: "disk", path: "/local"})
	e.waitPodReady(t, ns, "second")
	if out := mustExec(t, ns, "second", "", "cat /nfs/f /local/f"); strings.Count(out, "after") != 2 {
		t.Errorf("the second pod reads %q", out)
	}
	// The new plugin unmounts what the old one mounted: kubelet removes the pod only once its volumes
	// are unmounted.
	e.deletePod(t, ns, "user")
	e.deletePod(t, ns, "second")
}

// nodePluginPod returns the node plugin's pod on the test node, waiting for one whose UID is not
// notUID (the DaemonSet's replacement).
func (e *env) nodePluginPod(t *testing.T, notUID types.UID) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	waiter(t, podTimeout).Eventually("a node plugin pod on "+e.nodeName, func(ctx context.Context) (bool, error) {
		pods, err := e.client.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: nodeSelector,
			FieldSelector: "spec.nodeName=" + e.nodeName,
		})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp == nil && p.UID != notUID {
				found = p
				return true, nil
			}
		}
		return false, nil
	})
	return found
}
