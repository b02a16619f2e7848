package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowage-csi/stowage/pkg/nodeloss"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// lostNode creates a Node object as a kubelet would register it (no
// kubelet, no node plugin: the node is only ever lost here).
func (h *harness) lostNode(name string) {
	h.t.Helper()
	_, err := h.c.CoreV1().Nodes().Create(h.ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{nodeTopo: name},
	}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = h.c.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// localPV creates what the node plugin of node writes for a provisioned
// local volume (handle, node affinity, the library's finalizer and
// provisioned-by annotation), held by claim (none: nobody), and waits for
// the PV controller to give it phase.
func (h *harness) localPV(name, node string, sc *storagev1.StorageClass, policy v1.PersistentVolumeReclaimPolicy,
	claim *v1.ObjectReference, phase v1.PersistentVolumePhase) *v1.PersistentVolume {
	h.t.Helper()
	name = h.id + "-" + name
	id := volumeid.ID{Backend: volumeid.Local, Node: node, Dir: name, Name: name, OnDelete: "delete"}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": h.driver},
			Finalizers:  []string{nodeloss.FinalizerProvisioner},
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              sc.Name,
			ClaimRef:                      claim,
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: h.driver, VolumeHandle: id.String(),
			}},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: nodeTopo, Operator: v1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
	if _, err := h.c.CoreV1().PersistentVolumes().Create(h.ctx, pv, metav1.CreateOptions{}); err != nil {
		h.t.Fatalf("create PV %s: %v", name, err)
	}
	return h.WaitPVPhase(name, phase)
}

// waitMarked waits until PV name carries (or, with want false, no longer
// carries) the node-gone annotation.
func (h *harness) waitMarked(name string, want bool) {
	h.t.Helper()
	h.Eventually(fmt.Sprintf("PV %s marked %s: %v", name, nodeloss.AnnNodeGone, want), func(context.Context) (bool, error) {
		pv, err := h.GetPV(name)
		if err != nil {
			return false, err
		}
		_, marked := pv.Annotations[nodeloss.AnnNodeGone]
		return marked == want, fmt.Errorf("annotations %v", pv.Annotations)
	})
}

// TestNodeLoss: one node's Node object is deleted, another is tainted
// out of service, a third stays. Released Delete-policy PVs of the two gone
// nodes are marked, then written off (finalizer removed, PV deleted); a
// Bound one and a Retain one are marked and kept, the Bound one's claim is
// told; a claim waiting for the deleted node is given back to the
// scheduler; the healthy node's PV is left alone; when the deleted node
// comes back its PVs are unmarked.
func TestNodeLoss(t *testing.T) {
	h := newHarness(t)
	ctrl := h.track(startProc(t, h.logDir, "controller", []string{"POD_NAME=controller", "POD_NAMESPACE=" + h.ns}, "controller",
		"--kubeconfig="+env.kubeconfig, "--driver-name="+h.driver,
		"--endpoint=unix://"+filepath.Join(h.sockDir(), "csi.sock"),
		"--provisioner=true", "--leader-elect=false", "--orphans-interval=0", "--node-loss-release-after=3s"))
	sc := h.localClass("local", nil)
	deleted, tainted, healthy := h.nodeName("deleted"), h.nodeName("tainted"), h.nodeName("healthy")
	for _, n := range []string{deleted, tainted, healthy} {
		h.lostNode(n)
	}

	// A claim that is gone: what a Released PV points at.
	goneClaim := func() *v1.ObjectReference {
		return &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: h.ns, Name: "gone", UID: "00000000-0000-0000-0000-000000000000"}
	}
	released := h.localPV("released", deleted, sc, v1.PersistentVolumeReclaimDelete, goneClaim(), v1.VolumeReleased)
	retained := h.localPV("retained", deleted, sc, v1.PersistentVolumeReclaimRetain, goneClaim(), v1.VolumeReleased)
	outOfService := h.localPV("out-of-service", tainted, sc, v1.PersistentVolumeReclaimDelete, goneClaim(), v1.VolumeReleased)
	fine := h.localPV("fine", healthy, sc, v1.PersistentVolumeReclaimDelete, goneClaim(), v1.VolumeReleased)
	boundName := h.id + "-bound"
	h.claim("held", sc, "", "1Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, func(c *v1.PersistentVolumeClaim) {
		c.Spec.VolumeName = boundName
	})
	bound := h.localPV("bound", deleted, sc, v1.PersistentVolumeReclaimDelete,
		&v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: h.ns, Name: "held"}, v1.VolumeBound)
	// What the scheduler left on a claim when it picked the node that goes.
	h.claim("waiting", sc, deleted, "1Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce})

	if err := h.c.CoreV1().Nodes().Delete(h.ctx, deleted, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	node, err := h.c.CoreV1().Nodes().Get(h.ctx, tainted, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.Taints = append(node.Spec.Taints, v1.Taint{Key: v1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: v1.TaintEffectNoExecute})
	if _, err := h.c.CoreV1().Nodes().Update(h.ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Released, Delete: marked, then written off.
	h.WaitEvent("PersistentVolume", released.Name, nodeloss.ReasonNodeGone, deleted, "Node object was deleted", "will be deleted 3s after")
	h.WaitEvent("PersistentVolume", released.Name, nodeloss.ReasonWrittenOff, deleted, released.Name)
	h.WaitPVGone(released.Name)
	h.WaitEvent("PersistentVolume", outOfService.Name, nodeloss.ReasonNodeGone, tainted, v1.TaintNodeOutOfService)
	h.WaitPVGone(outOfService.Name)
	h.Eventually("a log line naming the node and the directory", func(context.Context) (bool, error) {
		for _, line := range strings.Split(ctrl.log(), "\n") {
			if strings.Contains(line, "Wrote off local volume") && strings.Contains(line, deleted) && strings.Contains(line, released.Name) {
				return true, nil
			}
		}
		return false, fmt.Errorf("no such line in %s", ctrl.logPath)
	})

	// Bound: marked, its claim told, never written off. Retain: marked, kept.
	h.waitMarked(bound.Name, true)
	h.WaitEvent("PersistentVolumeClaim", "held", nodeloss.ReasonNodeGone, deleted, bound.Name, "Delete this claim")
	h.waitMarked(retained.Name, true)
	h.WaitEvent("PersistentVolume", retained.Name, nodeloss.ReasonNodeGone, "Retain")

	// The waiting claim goes back to the scheduler.
	h.WaitEvent("PersistentVolumeClaim", "waiting", nodeloss.ReasonSelectedNodeGone, deleted)
	if c, err := h.GetClaim("waiting"); err != nil || c.Annotations[annNode] != "" {
		t.Errorf("claim waiting: %v, annotations %v; want %s removed", err, c.Annotations, annNode)
	}

	// Both released PVs above went well after their 3 s; these two had as
	// long and more, and are still here, untouched.
	for _, name := range []string{bound.Name, retained.Name} {
		pv := h.PV(name)
		if !slices.Contains(pv.Finalizers, nodeloss.FinalizerProvisioner) && name == bound.Name {
			t.Errorf("PV %s lost its finalizer: %v", name, pv.Finalizers)
		}
		if pv.DeletionTimestamp != nil {
			t.Errorf("PV %s is being deleted", name)
		}
	}
	if pv := h.PV(fine.Name); pv.Annotations[nodeloss.AnnNodeGone] != "" || pv.DeletionTimestamp != nil {
		t.Errorf("PV %s of the healthy node was touched: %v, deleting %v", fine.Name, pv.Annotations, pv.DeletionTimestamp)
	}

	// The node comes back: its PVs are unmarked, and nothing else happens.
	h.lostNode(deleted)
	h.waitMarked(bound.Name, false)
	h.waitMarked(retained.Name, false)
	if b := h.WaitBound("held"); b.Name != bound.Name {
		t.Errorf("claim held is bound to %s, want %s", b.Name, bound.Name)
	}
}
