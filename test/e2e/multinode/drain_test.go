package multinode

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDrainAndUncordon: a Deployment's pod with a local volume runs on some node; `kubectl drain`
// evicts it, and its replacement waits (the volume is pinned to the cordoned node) until
// `kubectl uncordon`, then runs on that node again with the data the first pod wrote.
func TestDrainAndUncordon(t *testing.T) {
	c := setup(t)
	ns := c.namespace(t, "drain")
	c.claim(t, ns, "state", localClass, corev1.ReadWriteOnce)
	one := int32(1)
	labels := map[string]string{"app": "drained"}
	_, err := c.client.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "drained"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			// The old pod must let go of the ReadWriteOnce volume before the new one starts.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec("", "state", "echo started >>/data/log; cat /data/log; sleep 3600"),
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	first := c.waitDeploymentPod(t, ns, "")
	node := first.Spec.NodeName
	c.waitLogs(t, ns, first.Name, "started")
	t.Logf("pod %s runs on %s", first.Name, node)

	t.Cleanup(func() { _, _ = kubectl("uncordon", node) })
	if out, err := kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=3m"); err != nil {
		t.Fatalf("kubectl drain %s: %v\n%s", node, err, out)
	}
	second := c.waitDeploymentPod(t, ns, first.Name)
	msg := c.kube(t, ns).WaitEvent("Pod", second.Name, "FailedScheduling", "unschedulable")
	t.Logf("replacement %s while %s is drained: %s", second.Name, node, msg)
	c.stillPending(t, ns, second.Name)

	if out, err := kubectl("uncordon", node); err != nil {
		t.Fatalf("kubectl uncordon %s: %v\n%s", node, err, out)
	}
	if p := c.waitRunning(t, ns, second.Name); p.Spec.NodeName != node {
		t.Errorf("pod %s runs on %s after uncordon, want %s (where its volume is)", p.Name, p.Spec.NodeName, node)
	}
	// Both starts are in the log: the volume kept what the first pod wrote.
	c.waitLogs(t, ns, second.Name, "started\nstarted\n")
}

// waitDeploymentPod waits for the Deployment's one pod that is not named old and returns it once
// it has been seen (scheduled or not).
func (c *cluster) waitDeploymentPod(t *testing.T, ns, old string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waiter(t, podTimeout).Eventually("a pod of deployment drained other than "+old, func(ctx context.Context) (bool, error) {
		pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=drained"})
		if err != nil {
			return false, err
		}
		for i, p := range pods.Items {
			if p.Name != old && p.DeletionTimestamp == nil {
				pod = &pods.Items[i]
				if old == "" && p.Status.Phase != corev1.PodRunning {
					return false, fmt.Errorf("pod %s: %s", p.Name, p.Status.Phase)
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("%d pods, none new", len(pods.Items))
	})
	return pod
}

func kubectl(args ...string) (string, error) {
	out, err := exec.Command("kubectl", args...).CombinedOutput()
	return string(out), err
}
