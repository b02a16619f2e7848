// Package multinode tests Stowage on the test cluster with several nodes (test/cluster with
// STOWAGE_NODES=3, see run.sh): what only shows with more than one node — a local volume stays on
// its node, NFS is shared by all of them, each node plugin owns only its own volumes, a drained node
// gets its pod back, and each node has its own storage capacity. run.sh brings the cluster up,
// installs Stowage and runs these; by hand, source test/cluster/env.sh first.
package multinode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stowage-csi/stowage/pkg/volumeid"
	"github.com/stowage-csi/stowage/test/internal/kit"
)

const (
	driverName       = "csi.stowage.io"
	releaseNamespace = "stowage"
	localClass       = "stowage-local"
	nfsClass         = "stowage-nfs"
	busybox          = "docker.io/library/busybox:1.37"
	// node.localBasePath as every node sees it; where that is on this host differs per node.
	localBase = "/var/lib/stowage/local"

	// Bounds that only keep a broken cluster from hanging the run; no test measures time.
	podTimeout  = 3 * time.Minute
	bindTimeout = 2 * time.Minute
	poll        = time.Second
)

// cluster is the cluster under test: its nodes in order (node 1 first) and, for each, the directory
// on this host that the node sees as its local base path.
type cluster struct {
	client    kubernetes.Interface
	nodes     []string
	hostBase  map[string]string // node -> its local base path on this host
	clusterDD string            // STOWAGE_CLUSTER_DIR
}

// setup returns the cluster, or skips when there is none; it fails when the cluster has one node
// or Stowage's node plugin is not registered on every node.
func setup(t *testing.T) *cluster {
	t.Helper()
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Skip("KUBECONFIG is not set: run test/e2e/multinode/run.sh (or STOWAGE_NODES=3 test/cluster/up.sh, " +
			". test/cluster/env.sh, test/e2e/install.sh --values test/e2e/multinode/values.yaml)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig %s: %v", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client for %s: %v", kubeconfig, err)
	}
	c := &cluster{client: client, hostBase: map[string]string{}, clusterDD: os.Getenv("STOWAGE_CLUSTER_DIR")}
	first := os.Getenv("STOWAGE_NODE_NAME")
	if first == "" || c.clusterDD == "" {
		t.Fatal("STOWAGE_NODE_NAME or STOWAGE_CLUSTER_DIR is empty: source test/cluster/env.sh")
	}
	c.nodes = append(c.nodes, first)
	c.hostBase[first] = localBase // node 1 is the host's own filesystem
	for i := 2; ; i++ {
		name := os.Getenv(fmt.Sprintf("STOWAGE_NODE_%d_NAME", i))
		if name == "" {
			break
		}
		c.nodes = append(c.nodes, name)
		c.hostBase[name] = filepath.Join(c.clusterDD, "data", fmt.Sprintf("node-%d", i), "local")
	}
	if len(c.nodes) < 2 {
		t.Fatalf("the cluster has one node (%s): bring it up with STOWAGE_NODES=3 (test/e2e/multinode/run.sh)", first)
	}
	c.waitPluginsRegistered(t)
	return c
}

// waitPluginsRegistered waits until every node's CSINode lists the driver: helm's --wait only
// says the DaemonSet's pods are ready, not that each kubelet has taken the plugin in.
func (c *cluster) waitPluginsRegistered(t *testing.T) {
	t.Helper()
	for _, node := range c.nodes {
		waiter(t, podTimeout).Eventually("CSINode "+node+" lists "+driverName, func(ctx context.Context) (bool, error) {
			n, err := c.client.StorageV1().CSINodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, d := range n.Spec.Drivers {
				if d.Name == driverName {
					return true, nil
				}
			}
			return false, fmt.Errorf("drivers %v", n.Spec.Drivers)
		})
	}
}

func waiter(t *testing.T, timeout time.Duration) kit.Waiter {
	return kit.Waiter{T: t, Timeout: timeout, Poll: poll}
}

// kube gives t the shared waits for the claims, PVs and events of ns (test/internal/kit).
func (c *cluster) kube(t *testing.T, ns string) kit.Kube {
	return kit.Kube{Waiter: waiter(t, bindTimeout), Client: c.client, NS: ns}
}

// namespace creates a namespace for one test and deletes it at the end, waiting until it is gone so
// that its volumes are released before the next test; on failure it first logs its pods and events.
func (c *cluster) namespace(t *testing.T, prefix string) string {
	t.Helper()
	ctx := context.Background()
	ns, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "mn-" + prefix + "-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	name := ns.Name
	t.Cleanup(func() {
		if t.Failed() {
			c.dump(t, name)
		}
		if err := c.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
			return
		}
		waiter(t, podTimeout).WaitGone("namespace "+name, func(ctx context.Context) error {
			_, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return err
		})
	})
	return name
}

// dump logs where each pod of ns is and the namespace's events, to say what went wrong.
func (c *cluster) dump(t *testing.T, ns string) {
	ctx := context.Background()
	if pods, err := c.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			t.Logf("pod %s: %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		}
	}
	if evs, err := c.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, e := range evs.Items {
			t.Logf("event %s/%s %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}

// claim creates a 64 MiB claim of class with one access mode.
func (c *cluster) claim(t *testing.T, ns, name, class string, mode corev1.PersistentVolumeAccessMode) {
	t.Helper()
	_, err := c.client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{mode},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create claim %s/%s: %v", ns, name, err)
	}
}

// podSpec runs script in busybox with claim at /data, on node when node is not empty (through the
// scheduler, by the node's hostname label, so that volume topology is still checked).
func podSpec(node, claim, script string) corev1.PodSpec {
	grace := int64(1)
	spec := corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{
			Name: "c", Image: busybox, ImagePullPolicy: corev1.PullIfNotPresent,
			Command:      []string{"sh", "-c", script},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
		}},
		Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		}}},
	}
	if node != "" {
		spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
	}
	return spec
}

// pod creates a pod of podSpec.
func (c *cluster) pod(t *testing.T, ns, name, node, claim, script string) {
	t.Helper()
	_, err := c.client.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: podSpec(node, claim, script),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
}

// waitRunning waits until the pod is Running and returns it.
func (c *cluster) waitRunning(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waiter(t, podTimeout).Eventually("pod "+ns+"/"+name+" Running", func(ctx context.Context) (bool, error) {
		p, err := c.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		if p.Status.Phase != corev1.PodRunning {
			return false, fmt.Errorf("phase %s on %q", p.Status.Phase, p.Spec.NodeName)
		}
		return true, nil
	})
	return pod
}

// stillPending checks that a pod the scheduler refused has not been placed after all.
func (c *cluster) stillPending(t *testing.T, ns, name string) {
	t.Helper()
	p, err := c.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
		t.Errorf("pod %s: %s on %q, want Pending on no node", name, p.Status.Phase, p.Spec.NodeName)
	}
}

// waitLogs waits until the pod's log contains every one of want, and returns it.
func (c *cluster) waitLogs(t *testing.T, ns, pod string, want ...string) string {
	t.Helper()
	var got string
	waiter(t, podTimeout).Eventually(fmt.Sprintf("log of %s/%s contains %q", ns, pod, want), func(ctx context.Context) (bool, error) {
		raw, err := c.client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return false, err
		}
		got = string(raw)
		for _, w := range want {
			if !strings.Contains(got, w) {
				return false, fmt.Errorf("log so far: %q", got)
			}
		}
		return true, nil
	})
	return got
}

// localVolume says which node a local PV is pinned to and where its directory is on this host.
func (c *cluster) localVolume(t *testing.T, pv *corev1.PersistentVolume) (node, hostDir string) {
	t.Helper()
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driverName {
		t.Fatalf("PV %s is not a %s volume", pv.Name, driverName)
	}
	id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
	if err != nil {
		t.Fatalf("PV %s: %v", pv.Name, err)
	}
	if id.Backend != volumeid.Local {
		t.Fatalf("PV %s is not a local volume: %s", pv.Name, pv.Spec.CSI.VolumeHandle)
	}
	base, ok := c.hostBase[id.Node]
	if !ok {
		t.Fatalf("PV %s is on node %q, which is none of %v", pv.Name, id.Node, c.nodes)
	}
	return id.Node, filepath.Join(base, id.Dir)
}

// pluginPods maps each node to the name of its Stowage node plugin pod.
func (c *cluster) pluginPods(t *testing.T) map[string]string {
	t.Helper()
	pods, err := c.client.CoreV1().Pods(releaseNamespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=node",
	})
	if err != nil {
		t.Fatal(err)
	}
	byNode := map[string]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			byNode[p.Spec.NodeName] = p.Name
		}
	}
	if len(byNode) != len(c.nodes) {
		nodes := make([]string, 0, len(byNode))
		for n := range byNode {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		t.Fatalf("node plugins on %v, want one on each of %v", nodes, c.nodes)
	}
	return byNode
}

// pluginLog is the log of the node plugin pod.
func (c *cluster) pluginLog(t *testing.T, pod string) string {
	t.Helper()
	raw, err := c.client.CoreV1().Pods(releaseNamespace).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("log of %s: %v", pod, err)
	}
	return string(raw)
}

// deletePod deletes a pod and waits until it is gone, which kubelet allows only once its volumes
// are unmounted.
func (c *cluster) deletePod(t *testing.T, ns, name string) {
	t.Helper()
	if err := c.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
	waiter(t, podTimeout).WaitGone("pod "+ns+"/"+name, func(ctx context.Context) error {
		_, err := c.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
}
