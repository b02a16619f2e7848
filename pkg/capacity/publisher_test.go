package capacity

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

const (
	drv = "csi.test.stowage.io"
	ns  = "stowage"
	gib = int64(1) << 30
)

// getter answers GetCapacity with whatever the test sets, and remembers
// what it was asked.
type getter struct {
	mu        sync.Mutex
	available int64
	drift     int64 // added on every call: a disk others write to
	err       error
	asked     []*csi.GetCapacityRequest
}

func (g *getter) GetCapacity(_ context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, req)
	if g.err != nil {
		return nil, g.err
	}
	g.available += g.drift
	return &csi.GetCapacityResponse{AvailableCapacity: g.available, MaximumVolumeSize: wrapperspb.Int64(g.available / 2)}, nil
}

func (g *getter) set(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.available = n
}

func class(name, kind string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: drv,
		Parameters: map[string]string{"backend": kind}}
}

// world is one publisher running on a fake clientset.
type world struct {
	t      *testing.T
	client *fake.Clientset
	pub    *Publisher
	events *record.FakeRecorder
	// volumes is the PV informer the publisher watches (the factory's).
	volumes cache.SharedIndexInformer
}

func (w *world) list() []storagev1.CSIStorageCapacity {
	w.t.Helper()
	l, err := w.client.StorageV1().CSIStorageCapacities(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].StorageClassName < l.Items[j].StorageClassName })
	return l.Items
}

// summary is "class=capacity" for every object, sorted.
func summary(items []storagev1.CSIStorageCapacity) string {
	var s []string
	for _, o := range items {
		c := "none"
		if o.Capacity != nil {
			c = o.Capacity.String()
		}
		s = append(s, o.StorageClassName+"="+c)
	}
	return strings.Join(s, ",")
}

// waitFor waits until the objects read want; a bound on a hang, not a speed test.
func (w *world) waitFor(want string) []storagev1.CSIStorageCapacity {
	w.t.Helper()
	var got []storagev1.CSIStorageCapacity
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got = w.list(); summary(got) == want {
			return got
		}
	}
	w.t.Fatalf("objects: %q, want %q", summary(got), want)
	return nil
}

func TestNodeObjects(t *testing.T) {
	g := &getter{available: 10 * gib}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "uid-a"}}
	other := class("other-driver", "local")
	other.Provisioner = "someone.else"
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.Local, NodeName: "node-a", Capacity: g, Owner: NodeOwner(client, "node-a")},
		node, class("fast", "local"), class("slow", "local"), class("shared", "nfs"), other)

	got := w.waitFor("fast=10Gi,slow=10Gi")
	for _, o := range got {
		if o.NodeTopology == nil || len(o.NodeTopology.MatchLabels) != 1 || o.NodeTopology.MatchLabels[backend.TopologyKey] != "node-a" {
			t.Errorf("%s: nodeTopology %v, want only %s=node-a", o.Name, o.NodeTopology, backend.TopologyKey)
		}
		if o.MaximumVolumeSize == nil || o.MaximumVolumeSize.Value() != 5*gib {
			t.Errorf("%s: maximumVolumeSize %v, want 5Gi", o.Name, o.MaximumVolumeSize)
		}
		if len(o.OwnerReferences) != 1 || o.OwnerReferences[0].Kind != "Node" || o.OwnerReferences[0].UID != "uid-a" {
			t.Errorf("%s: owners %+v, want Node node-a", o.Name, o.OwnerReferences)
		}
		if o.Labels[LabelDriver] != drv || o.Labels[LabelManagedBy] != "stowage-node-node-a" {
			t.Errorf("%s: labels %v", o.Name, o.Labels)
		}
	}
	g.mu.Lock()
	for _, req := range g.asked {
		if req.GetAccessibleTopology().GetSegments()[backend.TopologyKey] != "node-a" || req.GetParameters()["backend"] != "local" {
			t.Errorf("GetCapacity asked %v, want the node's segment and the class's parameters", req)
		}
	}
	g.mu.Unlock()

	// Something changed: the numbers follow on Trigger.
	g.set(3 * gib)
	w.pub.Trigger()
	w.waitFor("fast=3Gi,slow=3Gi")

	// A class deleted: its object goes.
	if err := client.StorageV1().StorageClasses().Delete(context.Background(), "fast", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("slow=3Gi")
}

// start runs a publisher for cfg on client, which first gets objs.
func start(t *testing.T, client *fake.Clientset, cfg Config, objs ...runtime.Object) *world {
	t.Helper()
	for _, o := range objs {
		if err := client.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Client, cfg.DriverName, cfg.Namespace = client, drv, ns
	pub, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(client, 0)
	events := record.NewFakeRecorder(100)
	run, err := pub.Start(ctx, factory, events)
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
	return &world{t: t, client: client, pub: pub, events: events, volumes: factory.Core().V1().PersistentVolumes().Informer()}
}

func ours(class, name, manager string) *storagev1.CSIStorageCapacity {
	return &storagev1.CSIStorageCapacity{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name),
			Labels: map[string]string{LabelDriver: drv, LabelManagedBy: manager}},
		StorageClassName: class,
	}
}

// After a restart the publisher finds what it made before: one object per
// class, whatever it left behind, and the other nodes' objects untouched.
func TestRestartMakesNoDuplicates(t *testing.T) {
	g := &getter{available: gib}
	cfg := Config{DriverName: drv, Backend: volumeid.Local, NodeName: "node-a"}
	name := newPublisher(cfg).name("fast")
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.Local, NodeName: "node-a", Capacity: g},
		class("fast", "local"),
		ours("fast", name, "stowage-node-node-a"),
		ours("fast", "fast-older-name", "stowage-node-node-a"),
		ours("gone", "gone-x", "stowage-node-node-a"),
		ours("fast", "fast-node-b", "stowage-node-node-b"))
	got := w.waitFor("fast=1Gi,fast=none")
	for _, o := range got {
		if o.Labels[LabelManagedBy] == "stowage-node-node-a" && o.Name != name {
			t.Errorf("node-a has %s, want only %s", o.Name, name)
		}
		if o.Labels[LabelManagedBy] == "stowage-node-node-b" && o.Name != "fast-node-b" {
			t.Errorf("node-b's object changed: %+v", o)
		}
	}
}

func TestControllerObjects(t *testing.T) {
	g := &getter{available: 100 * gib}
	yes := true
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "stowage-controller", Namespace: ns, UID: "uid-d"}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "stowage-controller-abc", Namespace: ns, UID: "uid-rs",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: deploy.Name, UID: deploy.UID, Controller: &yes}}}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stowage-controller-abc-xyz", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}}}
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.NFS, Capacity: g, Owner: DeploymentOwner(client, ns, pod.Name)},
		deploy, rs, pod, class("shared", "nfs"), class("fast", "local"))
	got := w.waitFor("shared=100Gi")
	o := got[0]
	if o.NodeTopology == nil || len(o.NodeTopology.MatchLabels) > 0 || len(o.NodeTopology.MatchExpressions) > 0 {
		t.Errorf("nodeTopology %v, want the empty selector (every node)", o.NodeTopology)
	}
	if len(o.OwnerReferences) != 1 || o.OwnerReferences[0].Kind != "Deployment" || o.OwnerReferences[0].UID != "uid-d" {
		t.Errorf("owners %+v, want Deployment stowage-controller", o.OwnerReferences)
	}
	if o.Labels[LabelManagedBy] != "stowage-controller" {
		t.Errorf("labels %v", o.Labels)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, req := range g.asked {
		if req.GetAccessibleTopology() != nil {
			t.Errorf("GetCapacity for NFS asked with topology %v, want none", req.GetAccessibleTopology())
		}
	}
}

// Without a pod to start from (not run by the chart), objects have no owner.
func TestControllerWithoutPod(t *testing.T) {
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.NFS, Capacity: &getter{available: gib}, Owner: DeploymentOwner(client, ns, "no-such-pod")},
		class("shared", "nfs"))
	if o := w.waitFor("shared=1Gi")[0]; len(o.OwnerReferences) != 0 {
		t.Errorf("owners %+v, want none", o.OwnerReferences)
	}
}

// A class whose parameters GetCapacity refuses has no room: no object, and
// an event on the class that says why.
func TestRefusedParameters(t *testing.T) {
	g := &getter{err: status.Error(codes.InvalidArgument, "parameter share is missing")}
	cfg := Config{DriverName: drv, Backend: volumeid.NFS}
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.NFS, Capacity: g},
		class("broken", "nfs"), ours("broken", newPublisher(cfg).name("broken"), "stowage-controller"))
	w.waitFor("")
	select {
	case e := <-w.events.Events:
		if !strings.Contains(e, "Warning CapacityUnknown") || !strings.Contains(e, "parameter share is missing") {
			t.Errorf("event %q, want a CapacityUnknown warning naming the problem", e)
		}
	case <-time.After(30 * time.Second):
		t.Error("no event on the class")
	}
}

// A volume made on this node refreshes the numbers without Trigger or tick.
func TestVolumeEventRefreshes(t *testing.T) {
	g := &getter{available: 4 * gib}
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.Local, NodeName: "node-a", Capacity: g, Interval: time.Hour},
		class("fast", "local"))
	w.waitFor("fast=4Gi")
	settle(g) // the sync that follows our own object's creation is no answer to what comes next
	g.set(3 * gib)
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"}, Spec: v1.PersistentVolumeSpec{
		PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
			Driver: drv, VolumeHandle: volumeid.ID{Backend: volumeid.Local, Node: "node-a", Dir: "pv-1"}.String()}},
	}}
	if _, err := client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Then the library adds its finalizer: an update that changes no size.
	pv.Finalizers = []string{"external-provisioner.volume.kubernetes.io/finalizer"}
	pv.ResourceVersion = "8"
	if _, err := client.CoreV1().PersistentVolumes().Update(context.Background(), pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("fast=3Gi")
}

// The node plugin publishes nothing while its Node cannot be read: an object
// without an owner would outlive the node.
func TestNodeOwnerMissing(t *testing.T) {
	g := &getter{available: gib}
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.Local, NodeName: "node-a", Capacity: g, Owner: NodeOwner(client, "node-a")},
		class("fast", "local"))
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got := w.list(); len(got) > 0 {
			t.Fatalf("published %s without the Node", summary(got))
		}
	}
	if _, err := client.CoreV1().Nodes().Create(context.Background(), &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "u"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.pub.Trigger()
	w.waitFor("fast=1Gi")
}

func TestNames(t *testing.T) {
	long := strings.Repeat("n", 200) + ".example.com"
	a := newPublisher(Config{DriverName: drv, Backend: volumeid.Local, NodeName: long})
	b := newPublisher(Config{DriverName: drv, Backend: volumeid.Local, NodeName: long + "x"})
	c := newPublisher(Config{DriverName: drv, Backend: volumeid.NFS})
	seen := map[string]bool{}
	for _, p := range []publisher{a, b, c} {
		if errs := validation.IsValidLabelValue(p.id); len(errs) > 0 {
			t.Errorf("managed-by %q: %v", p.id, errs)
		}
		for _, cl := range []string{"fast", strings.Repeat("c", 250)} {
			n := p.name(cl)
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 || len(n) > 63 {
				t.Errorf("name %q: %v", n, errs)
			}
			if seen[n] {
				t.Errorf("name %q given twice", n)
			}
			seen[n] = true
			if p.name(cl) != n {
				t.Errorf("name of %s is not stable", cl)
			}
		}
	}
	if a.id == b.id {
		t.Errorf("two long node names share managed-by %q", a.id)
	}
}

func TestConfigErrors(t *testing.T) {
	base := Config{DriverName: drv, Backend: volumeid.Local, NodeName: "n", Namespace: ns, Client: fake.NewClientset(), Capacity: &getter{}}
	for name, mod := range map[string]func(*Config){
		"no namespace": func(c *Config) { c.Namespace = "" },
		"no node":      func(c *Config) { c.NodeName = "" },
		"bad backend":  func(c *Config) { c.Backend = "zfs" },
		"no getter":    func(c *Config) { c.Capacity = nil },
	} {
		c := base
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
	if _, err := New(base); err != nil {
		t.Errorf("good config refused: %v", err)
	}
}

func (g *getter) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.asked)
}

// Publishing must not feed on itself: an update of our own object is no
// reason to ask again, even when the answer changes on every call.
func TestNoRefreshLoop(t *testing.T) {
	g := &getter{available: gib, drift: 4096}
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.Local, NodeName: "node-a", Capacity: g, Interval: time.Hour},
		class("fast", "local"))
	eventually(t, func() bool { return len(w.list()) == 1 })
	time.Sleep(time.Second) // let the events of the first writes settle
	settled := g.calls()
	time.Sleep(2 * time.Second)
	if n := g.calls() - settled; n > 0 {
		t.Errorf("GetCapacity called %d more times with nothing happening (after %d calls to publish)", n, settled)
	}
}

// eventually waits for cond; a bound on a hang, not a speed test.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached")
}

// The provisioner library adds the PV it created to the shared informer's
// store before the watch reports it, so the watch's Add comes as an update
// to an identical object: it must refresh the numbers all the same.
func TestVolumeAddedToTheStoreFirst(t *testing.T) {
	g := &getter{available: 4 * gib}
	client := fake.NewClientset()
	w := start(t, client, Config{Backend: volumeid.Local, NodeName: "node-a", Capacity: g, Interval: time.Hour},
		class("fast", "local"))
	w.waitFor("fast=4Gi")
	settle(g) // the sync that follows our own object's creation is no answer to what comes next
	g.set(3 * gib)
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"}, Spec: v1.PersistentVolumeSpec{
		PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
			Driver: drv, VolumeHandle: volumeid.ID{Backend: volumeid.Local, Node: "node-a", Dir: "pv-1"}.String()}},
	}}
	// What the library does right after its Create, here before it so that
	// the watch event surely comes second (the fake keeps resourceVersion as given).
	pv.ResourceVersion = "7"
	if err := w.volumes.GetStore().Add(pv.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Then the library adds its finalizer: an update that changes no size.
	pv.Finalizers = []string{"external-provisioner.volume.kubernetes.io/finalizer"}
	pv.ResourceVersion = "8"
	if _, err := client.CoreV1().PersistentVolumes().Update(context.Background(), pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("fast=3Gi")
}

// settle waits until the publisher has stopped asking for a while.
func settle(g *getter) {
	for n := -1; n != g.calls(); time.Sleep(300 * time.Millisecond) {
		n = g.calls()
	}
}
