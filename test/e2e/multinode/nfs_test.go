package multinode

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestNFSSharedByEveryNode: one ReadWriteMany NFS claim, one pod per node started together; each
// writes a file named for its node, waits until the files of all nodes are there, and prints them.
// Every pod must print every node's line: each node reads what the others wrote.
func TestNFSSharedByEveryNode(t *testing.T) {
	c := setup(t)
	ns := c.namespace(t, "rwx")
	c.claim(t, ns, "shared", nfsClass, corev1.ReadWriteMany)
	c.kube(t, ns).WaitBound("shared")

	var lines []string
	for _, node := range c.nodes {
		lines = append(lines, "written on "+node)
	}
	for i, node := range c.nodes {
		script := fmt.Sprintf(`echo "written on %s" >/data/%s.txt
until [ "$(ls /data/*.txt | wc -l)" -ge %d ]; do sleep 1; done
echo "--- read on %s"; cat /data/*.txt; sleep 3600`, node, node, len(c.nodes), node)
		c.pod(t, ns, fmt.Sprintf("writer-%d", i+1), node, "shared", script)
	}
	for i, node := range c.nodes {
		pod := fmt.Sprintf("writer-%d", i+1)
		if p := c.waitRunning(t, ns, pod); p.Spec.NodeName != node {
			t.Errorf("pod %s runs on %s, want %s", pod, p.Spec.NodeName, node)
		}
		out := c.waitLogs(t, ns, pod, append([]string{"--- read on " + node}, lines...)...)
		t.Logf("%s on %s:\n%s", pod, node, strings.TrimSpace(out))
	}
}
