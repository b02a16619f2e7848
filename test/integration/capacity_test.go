package integration

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const (
	gib = int64(1) << 30
	// slack is how far the published numbers may be from statfs taken a
	// moment later: other work on this machine writes to the same disk.
	slack = gib
)

// capacityNode starts `stowage node` like h.node, with the namespace its
// CSIStorageCapacity objects go to (the chart sets $POD_NAMESPACE) and,
// if kubeconfig is set, another identity.
func (h *harness) capacityNode(nodeName, kubeconfig string) *proc {
	h.t.Helper()
	if kubeconfig == "" {
		kubeconfig = env.kubeconfig
		if _, err := h.c.CoreV1().Nodes().Create(h.ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: nodeName, Labels: map[string]string{nodeTopo: nodeName},
		}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			h.t.Fatal(err)
		}
	}
	base := filepath.Join(h.logDir, "local-"+nodeName)
	h.bases[nodeName] = base
	return h.track(startProc(h.t, h.logDir, "node-"+nodeName, []string{"NODE_NAME=" + nodeName, "POD_NAMESPACE=" + h.ns}, "node",
		"--kubeconfig="+kubeconfig, "--driver-name="+h.driver, "--node-id="+nodeName,
		"--local-base-path="+base, "--kubelet-registration-dir=",
		"--endpoint=unix://"+filepath.Join(h.sockDir(), "csi.sock"), "--provisioner=true",
		// Only events may refresh the numbers within a test: a poll would hide a missed one.
		"--capacity-poll-interval=1h"))
}

// capacities lists the test driver's CSIStorageCapacity objects made by
// one publisher ("stowage-node-<node>" or "stowage-controller").
func (h *harness) capacities(c kubernetes.Interface, managedBy string) []storagev1.CSIStorageCapacity {
	h.t.Helper()
	l, err := c.StorageV1().CSIStorageCapacities(h.ns).List(h.ctx, metav1.ListOptions{
		LabelSelector: "csi.storage.k8s.io/drivername=" + h.driver + ",csi.storage.k8s.io/managed-by=" + managedBy,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].StorageClassName < l.Items[j].StorageClassName })
	return l.Items
}

func classesOf(items []storagev1.CSIStorageCapacity) string {
	var s []string
	for _, o := range items {
		s = append(s, o.StorageClassName)
	}
	return strings.Join(s, ",")
}

// waitCapacities waits until the publisher's objects are for exactly classes
// (sorted, comma-separated) and ok holds for each.
func (h *harness) waitCapacities(managedBy, classes string, ok func(o *storagev1.CSIStorageCapacity) string) []storagev1.CSIStorageCapacity {
	h.t.Helper()
	var items []storagev1.CSIStorageCapacity
	h.Eventually("CSIStorageCapacity of "+managedBy+" for "+classes, func(context.Context) (bool, error) {
		items = h.capacities(h.c, managedBy)
		if got := classesOf(items); got != classes {
			return false, errors.New("objects for classes [" + got + "]")
		}
		for i := range items {
			if ok != nil {
				if why := ok(&items[i]); why != "" {
					return false, errors.New(items[i].Name + ": " + why)
				}
			}
		}
		return true, nil
	})
	return items
}

// freeOf is what statfs says can still be written under dir.
func freeOf(t *testing.T, dir string) (total, free int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}

// near says why capacity is not free-reserved (within slack), or "".
func near(o *storagev1.CSIStorageCapacity, free, reserved int64) string {
	if o.Capacity == nil {
		return "no capacity"
	}
	want := free - reserved
	if d := o.Capacity.Value() - want; d > slack || d < -slack {
		return fmt.Sprintf("capacity %s, want about %s (statfs free %s minus %s given to volumes)", o.Capacity,
			resource.NewQuantity(want, resource.BinarySI), resource.NewQuantity(free, resource.BinarySI), resource.NewQuantity(reserved, resource.BinarySI))
	}
	return ""
}

// The node plugin publishes one object per local class for its own node,
// owned by its Node, with statfs's numbers minus what its volumes were
// given; a class deleted takes its object along; a restart finds its
// objects again instead of making new ones.
func TestCapacityNode(t *testing.T) {
	h := newHarness(t)
	node := h.nodeName("a")
	p := h.capacityNode(node, "")
	n, err := h.c.CoreV1().Nodes().Get(h.ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fast := h.localClass("fast", nil)
	slow := h.localClass("slow", nil)
	if env.nfs != nil {
		h.nfsClass("shared", nil) // the controller's, not the node's
	}
	managedBy := "stowage-node-" + node
	base := h.bases[node]
	total, _ := freeOf(t, base)

	shape := func(o *storagev1.CSIStorageCapacity) string {
		if o.NodeTopology == nil || len(o.NodeTopology.MatchLabels) != 1 || o.NodeTopology.MatchLabels[nodeTopo] != node ||
			len(o.NodeTopology.MatchExpressions) != 0 {
			return fmt.Sprintf("nodeTopology %v, want only %s=%s", o.NodeTopology, nodeTopo, node)
		}
		if len(o.OwnerReferences) != 1 || o.OwnerReferences[0].Kind != "Node" || o.OwnerReferences[0].UID != n.UID {
			return fmt.Sprintf("owners %+v, want the Node %s", o.OwnerReferences, node)
		}
		if o.MaximumVolumeSize == nil || o.Capacity == nil || o.MaximumVolumeSize.Value() != min(total, o.Capacity.Value()) {
			return fmt.Sprintf("maximumVolumeSize %v, want the capacity %v (less than the filesystem's %d bytes)", o.MaximumVolumeSize, o.Capacity, total)
		}
		return ""
	}
	exact := func(reserved int64) func(o *storagev1.CSIStorageCapacity) string {
		return func(o *storagev1.CSIStorageCapacity) string {
			if why := shape(o); why != "" {
				return why
			}
			_, free := freeOf(t, base)
			return near(o, free, reserved)
		}
	}
	first := h.waitCapacities(managedBy, fast.Name+","+slow.Name, exact(0))

	// A volume takes its size from what the others may use: the numbers
	// follow without waiting for the next poll (the PV event triggers it).
	h.claim("big", fast, node, "4Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce})
	h.WaitBound("big")
	h.waitCapacities(managedBy, fast.Name+","+slow.Name, exact(4*gib))

	if err := h.c.StorageV1().StorageClasses().Delete(h.ctx, slow.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitCapacities(managedBy, fast.Name, nil)

	// A restart publishes into the same object: same name and UID, no second one.
	p.stop()
	p.restart()
	h.claim("small", fast, node, "1Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce})
	h.WaitBound("small")
	after := h.waitCapacities(managedBy, fast.Name, exact(5*gib))
	var before types.UID
	for _, o := range first {
		if o.StorageClassName == fast.Name {
			before = o.UID
		}
	}
	if after[0].UID != before {
		t.Errorf("after the restart the object of %s is %s (UID %s), want the one from before (UID %s)", fast.Name, after[0].Name, after[0].UID, before)
	}

	h.DeleteClaim("big")
	h.waitCapacities(managedBy, fast.Name, exact(gib))
}

// The controller's leader publishes one object per NFS class, for every
// node (the empty selector), and none for local classes.
func TestCapacityController(t *testing.T) {
	h := newHarness(t)
	nfs := needNFS(t)
	h.controller("ctl", true)
	shared := h.nfsClass("shared", nil)
	h.localClass("fast", nil)
	_, free := freeOf(t, nfs.dir)
	items := h.waitCapacities("stowage-controller", shared.Name, func(o *storagev1.CSIStorageCapacity) string {
		if o.NodeTopology == nil || len(o.NodeTopology.MatchLabels) != 0 || len(o.NodeTopology.MatchExpressions) != 0 {
			return fmt.Sprintf("nodeTopology %v, want the empty selector", o.NodeTopology)
		}
		if o.Capacity == nil || o.Capacity.Value() <= 0 || o.Capacity.Value() > free+slack {
			return fmt.Sprintf("capacity %v, want more than 0 and at most the share's free %d bytes", o.Capacity, free)
		}
		return ""
	})
	// Not run from a Deployment's pod: no owner to name.
	if len(items[0].OwnerReferences) != 0 {
		t.Errorf("owners %+v, want none outside a Deployment", items[0].OwnerReferences)
	}
	if err := h.c.StorageV1().StorageClasses().Delete(h.ctx, shared.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitCapacities("stowage-controller", "", nil)
}

// The chart's Role and node policy on a real API server: a node plugin's
// pod-bound token may publish the capacity of its own node and of no other,
// nor claim room on every node; the real node plugin publishes with it.
func TestCapacityNodePolicy(t *testing.T) {
	h := newHarness(t)
	sa := installChartRBAC(h)
	nodeA, nodeB := h.nodeName("node-a"), h.nodeName("node-b")
	for _, n := range []string{nodeA, nodeB} {
		h.createNode(n)
	}
	asA, tokenA := h.clientAs(h.podBoundToken(sa, nodeA))
	asNoNode, _ := h.clientAs(h.unboundToken(sa))
	h.waitNodePolicy(asA, nodeB)

	api := func(c kubernetes.Interface) func(name string, sel *metav1.LabelSelector) error {
		return func(name string, sel *metav1.LabelSelector) error {
			_, err := c.StorageV1().CSIStorageCapacities(h.ns).Create(h.ctx, &storagev1.CSIStorageCapacity{
				ObjectMeta: metav1.ObjectMeta{Name: name}, StorageClassName: "x", NodeTopology: sel,
				Capacity: resource.NewQuantity(gib, resource.BinarySI),
			}, metav1.CreateOptions{})
			return err
		}
	}
	on := func(node string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{nodeTopo: node}}
	}
	denied := func(what string, err error, want string) {
		t.Helper()
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want refused with %q", what, err, want)
		}
	}
	createA := api(asA)
	h.Eventually("the capacity policy to refuse node-b's capacity", func(context.Context) (bool, error) {
		err := createA("probe", on(nodeB))
		if err == nil {
			_ = h.c.StorageV1().CSIStorageCapacities(h.ns).Delete(h.ctx, "probe", metav1.DeleteOptions{})
			return false, errors.New("node-a's token published node-b's capacity (no policy in force)")
		}
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "CSIStorageCapacity"), err
	})
	denied("node-a publishes every node", createA("all", &metav1.LabelSelector{}), "its own node")
	both := on(nodeA)
	both.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "x", Operator: metav1.LabelSelectorOpExists}}
	denied("node-a adds an expression", createA("expr", both), "its own node")
	denied("a token without a node", api(asNoNode)("nonode", on(nodeA)), "names no node")
	if err := createA("own", on(nodeA)); err != nil {
		t.Fatalf("node-a publishes its own capacity: %v", err)
	}
	// (nodeTopology itself is immutable: an object cannot be moved to another node.)
	other, err := h.c.StorageV1().CSIStorageCapacities(h.ns).Create(h.ctx, &storagev1.CSIStorageCapacity{
		ObjectMeta: metav1.ObjectMeta{Name: "of-b"}, StorageClassName: "x", NodeTopology: on(nodeB),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other.Capacity = resource.NewQuantity(0, resource.BinarySI)
	_, err = asA.StorageV1().CSIStorageCapacities(h.ns).Update(h.ctx, other, metav1.UpdateOptions{})
	denied("node-a empties node-b's object", err, "its own node")
	denied("node-a deletes node-b's object", asA.StorageV1().CSIStorageCapacities(h.ns).Delete(h.ctx, other.Name, metav1.DeleteOptions{}), "its own node")
	if err := asA.StorageV1().CSIStorageCapacities(h.ns).Delete(h.ctx, "own", metav1.DeleteOptions{}); err != nil {
		t.Errorf("node-a deletes its own object: %v", err)
	}

	// The real node plugin under the chart's RBAC and policy, with node-a's token.
	h.capacityNode(nodeA, h.writeTokenKubeconfig(tokenA))
	sc := h.localClass("local", nil)
	h.waitCapacities("stowage-node-"+nodeA, sc.Name, func(o *storagev1.CSIStorageCapacity) string {
		if len(o.OwnerReferences) != 1 || o.OwnerReferences[0].Name != nodeA {
			return fmt.Sprintf("owners %+v, want Node %s", o.OwnerReferences, nodeA)
		}
		return ""
	})
}
