package multinode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// otherNode is a node that is not node.
func (c *cluster) otherNode(node string) string {
	for i := len(c.nodes) - 1; i >= 0; i-- {
		if c.nodes[i] != node {
			return c.nodes[i]
		}
	}
	return ""
}

// TestLocalVolumeStaysOnItsNode: a local claim's first pod, sent to a worker, gets its volume made on
// that worker (by that worker's plugin, in that worker's base path) and pinned there; a second pod of
// the ReadWriteOnce claim sent to another node is refused by the scheduler because of the PV's node
// affinity, and stays Pending.
func TestLocalVolumeStaysOnItsNode(t *testing.T) {
	c := setup(t)
	ns := c.namespace(t, "local")
	node, other := c.nodes[1], c.otherNode(c.nodes[1])
	c.claim(t, ns, "data", localClass, corev1.ReadWriteOnce)
	c.pod(t, ns, "first", node, "data", "echo from-first >/data/f && sleep 3600")
	if p := c.waitRunning(t, ns, "first"); p.Spec.NodeName != node {
		t.Fatalf("pod first runs on %s, want %s", p.Spec.NodeName, node)
	}
	pv := c.kube(t, ns).WaitBound("data")
	volNode, dir := c.localVolume(t, pv)
	if volNode != node {
		t.Errorf("PV %s is on node %s, want %s (where its first pod went)", pv.Name, volNode, node)
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || !strings.Contains(terms[0].String(), node) {
		t.Errorf("PV %s node affinity %v does not pin it to %s", pv.Name, terms, node)
	}
	waiter(t, podTimeout).Eventually("the first pod's file in "+dir, func(context.Context) (bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, "f"))
		return err == nil && string(b) == "from-first\n", fmt.Errorf("%q, %v", b, err)
	})
	// Nowhere else: the other nodes' base paths have no directory of that name.
	rel, err := filepath.Rel(c.hostBase[node], dir)
	if err != nil {
		t.Fatal(err)
	}
	for n, base := range c.hostBase {
		if _, err := os.Stat(filepath.Join(base, rel)); n != node && err == nil {
			t.Errorf("node %s's base path %s also has the volume's directory %s", n, base, rel)
		}
	}

	c.pod(t, ns, "second", other, "data", "sleep 3600")
	msg := c.kube(t, ns).WaitEvent("Pod", "second", "FailedScheduling", "didn't match PersistentVolume's node affinity")
	t.Logf("second pod, sent to %s: %s", other, msg)
	c.stillPending(t, ns, "second")
}

// TestReadWriteOncePodAcrossNodes: an NFS claim (reachable from every node) in ReadWriteOncePod is
// used by one pod; a second pod sent to another node stays Pending because of the access mode, not
// because of where the volume is.
func TestReadWriteOncePodAcrossNodes(t *testing.T) {
	c := setup(t)
	ns := c.namespace(t, "rwop")
	c.claim(t, ns, "solo", nfsClass, corev1.ReadWriteOncePod)
	c.kube(t, ns).WaitBound("solo")
	c.pod(t, ns, "a", c.nodes[0], "solo", "sleep 3600")
	c.waitRunning(t, ns, "a")
	c.pod(t, ns, "b", c.nodes[1], "solo", "sleep 3600")
	msg := c.kube(t, ns).WaitEvent("Pod", "b", "FailedScheduling", "ReadWriteOncePod")
	t.Logf("pod b, sent to %s: %s", c.nodes[1], msg)
	c.stillPending(t, ns, "b")
}

// TestLocalDeleteByItsOwnNode: a local volume on the last node is deleted, with its directory, by
// that node's plugin; the other nodes' plugins never act on it (no delete in their logs).
func TestLocalDeleteByItsOwnNode(t *testing.T) {
	c := setup(t)
	ns := c.namespace(t, "delete")
	node := c.nodes[len(c.nodes)-1]
	plugins := c.pluginPods(t)
	c.claim(t, ns, "scratch", localClass, corev1.ReadWriteOnce)
	c.pod(t, ns, "writer", node, "scratch", "echo x >/data/x && sleep 3600")
	c.waitRunning(t, ns, "writer")
	k := c.kube(t, ns)
	pv := k.WaitBound("scratch")
	volNode, dir := c.localVolume(t, pv)
	if volNode != node {
		t.Fatalf("PV %s is on %s, want %s", pv.Name, volNode, node)
	}
	handle := pv.Spec.CSI.VolumeHandle

	c.deletePod(t, ns, "writer")
	k.DeleteClaim("scratch")
	k.WaitPVGone(pv.Name)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("directory %s of deleted PV %s: %v, want it gone", dir, pv.Name, err)
	}
	own := c.pluginLog(t, plugins[node])
	if !hasAction(own, handle, "Deleted volume") || !hasAction(own, pv.Name, "PersistentVolume deleted succeeded") {
		t.Errorf("the plugin of %s (%s) did not log deleting %s", node, plugins[node], handle)
	}
	for n, pod := range plugins {
		if n == node {
			continue
		}
		for _, line := range strings.Split(c.pluginLog(t, pod), "\n") {
			if msg := logMessage(line); actions[msg] && (strings.Contains(line, pv.Name) || strings.Contains(line, handle)) {
				t.Errorf("the plugin of %s (%s) acted on %s's volume: %s", n, pod, node, line)
			}
		}
	}
}

// actions are the log messages of a plugin (and of the provisioner library in it) that create or
// delete a volume or its PV. Every plugin also logs, at V(4), PVs of other nodes that it looks at
// and leaves alone; those are not actions.
var actions = map[string]bool{
	"Creating volume": true, "Created volume": true, "Provisioned volume": true,
	"Trying to save persistentvolume": true, "Started": true, "Deleted volume": true,
	"Volume deleted": true, "PersistentVolume deleted succeeded": true,
}

// logMessage is the message of a klog structured line (`I1203 ... file.go:90] "Deleted volume" k=v`).
func logMessage(line string) string {
	_, rest, ok := strings.Cut(line, "] \"")
	if !ok {
		return ""
	}
	msg, _, _ := strings.Cut(rest, "\"")
	return msg
}

// hasAction says whether log has a line with message msg that names what.
func hasAction(log, what, msg string) bool {
	for _, line := range strings.Split(log, "\n") {
		if logMessage(line) == msg && strings.Contains(line, what) {
			return true
		}
	}
	return false
}
