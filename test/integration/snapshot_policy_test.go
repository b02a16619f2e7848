package integration

import (
	"context"
	"strings"
	"testing"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

const labelManagedBy = "snapshot.storage.kubernetes.io/managed-by"

// TestSnapshotNodePolicy: with the chart's RBAC and policies on a real API server, the node plugin's
// pod-bound token may update a VolumeSnapshotContent (and its status) only while the content is
// labelled as managed by its own node, before and after the write; a token that names no node may
// write none.
func TestSnapshotNodePolicy(t *testing.T) {
	h := newHarness(t)
	snaps := installSnapshotCRDs(h)
	sa := installChartRBAC(h)
	nodeA, nodeB := h.nodeName("node-a"), h.nodeName("node-b")
	for _, n := range []string{nodeA, nodeB} {
		h.createNode(n)
	}
	kubeA, tokenA := h.clientAs(h.podBoundToken(sa, nodeA))
	h.waitNodePolicy(kubeA, nodeB) // also type-checks the snapshot policy
	asA := h.snapshotClientAs(tokenA)
	asNoNode := h.snapshotClientAs(h.unboundToken(sa))

	own := h.adminContent(snaps, "own", nodeA)
	other := h.adminContent(snaps, "other", nodeB)
	unlabelled := h.adminContent(snaps, "unlabelled", "")

	touch := func(c snapclient.Interface, name string, mod func(*snapshotv1.VolumeSnapshotContent)) error {
		got, err := c.SnapshotV1().VolumeSnapshotContents().Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Annotations == nil {
			got.Annotations = map[string]string{}
		}
		got.Annotations["stowage.io/touched"] = "yes"
		if mod != nil {
			mod(got)
		}
		_, err = c.SnapshotV1().VolumeSnapshotContents().Update(h.ctx, got, metav1.UpdateOptions{})
		return err
	}
	markReady := func(c snapclient.Interface, name string) error {
		got, err := c.SnapshotV1().VolumeSnapshotContents().Get(h.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		got.Status = &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: ptr.To("snapshot#local#x#y"), ReadyToUse: ptr.To(true)}
		_, err = c.SnapshotV1().VolumeSnapshotContents().UpdateStatus(h.ctx, got, metav1.UpdateOptions{})
		return err
	}
	relabel := func(node string) func(*snapshotv1.VolumeSnapshotContent) {
		return func(c *snapshotv1.VolumeSnapshotContent) { c.Labels[labelManagedBy] = node }
	}
	denied := func(t *testing.T, what string, err error, wants ...string) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Fatalf("%s: want a refusal, got %v", what, err)
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s refused, but the message lacks %q: %v", what, w, err)
			}
		}
	}

	t.Run("own node's content", func(t *testing.T) {
		if err := touch(asA, own, nil); err != nil {
			t.Fatalf("update: %v", err)
		}
		if err := markReady(asA, own); err != nil {
			t.Fatalf("update status: %v", err)
		}
	})
	t.Run("another node's content", func(t *testing.T) {
		denied(t, "update", touch(asA, other, nil), "managed by "+nodeB)
		denied(t, "update status", markReady(asA, other), "managed by "+nodeB)
		denied(t, "take it over by relabelling", touch(asA, other, relabel(nodeA)), "managed by "+nodeB)
	})
	t.Run("give own content away", func(t *testing.T) {
		denied(t, "relabel to node B", touch(asA, own, relabel(nodeB)), "managed by "+nodeB)
	})
	t.Run("content of no node (an NFS snapshot)", func(t *testing.T) {
		denied(t, "update", touch(asA, unlabelled, nil), "has no such label")
	})
	t.Run("token without a node name", func(t *testing.T) {
		denied(t, "update", touch(asNoNode, own, nil), "the token names no node")
	})
}

// adminContent creates, as admin, a content of the test's driver labelled as managed by node ("":
// no label), and returns its name.
func (h *harness) adminContent(snaps snapclient.Interface, name, node string) string {
	h.t.Helper()
	c := &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: h.id + "-" + name, Labels: map[string]string{}},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			Driver:            h.driver,
			DeletionPolicy:    snapshotv1.VolumeSnapshotContentRetain,
			Source:            snapshotv1.VolumeSnapshotContentSource{VolumeHandle: ptr.To("local#" + node + "#x")},
			VolumeSnapshotRef: v1.ObjectReference{Namespace: h.ns, Name: name},
		},
	}
	if node != "" {
		c.Labels[labelManagedBy] = node
	}
	if _, err := snaps.SnapshotV1().VolumeSnapshotContents().Create(h.ctx, c, metav1.CreateOptions{}); err != nil {
		h.t.Fatalf("create content %s: %v", c.Name, err)
	}
	h.t.Cleanup(func() {
		_ = snaps.SnapshotV1().VolumeSnapshotContents().Delete(context.Background(), c.Name, metav1.DeleteOptions{})
	})
	return c.Name
}

// snapshotClientAs is a snapshot client of the test's API server that authenticates with token only.
func (h *harness) snapshotClientAs(token string) snapclient.Interface {
	h.t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		h.t.Fatal(err)
	}
	anon := rest.AnonymousClientConfig(rc)
	anon.BearerToken = token
	anon.WarningHandler = rest.NoWarnings{}
	return snapclient.NewForConfigOrDie(anon)
}
