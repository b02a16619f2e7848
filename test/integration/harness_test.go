package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stowage-csi/stowage/pkg/volumeid"
	"github.com/stowage-csi/stowage/test/internal/kit"
)

// How long to wait for something that should happen at once, and how often
// to look. Generous: the machine is small and shared; this bounds a hang, it
// is no benchmark.
const (
	wait     = 90 * time.Second
	poll     = 200 * time.Millisecond
	annNode  = "volume.kubernetes.io/selected-node"
	nodeTopo = "topology.stowage.io/node"
)

// waiter waits for t with the tier's poll interval.
func waiter(t *testing.T, timeout time.Duration) kit.Waiter {
	return kit.Waiter{T: t, Timeout: timeout, Poll: poll}
}

// harness is one test's world: its own driver name (so its StorageClasses,
// lease and PVs are its own), namespace, nodes, base paths and NFS
// subdirectory, and the stowage processes it started. The embedded kit.Kube
// (same test, client and namespace as t, c and ns) gives it the shared waits:
// h.WaitBound(claim), h.WaitPVPhase(pv, phase), h.WaitPVGone(pv),
// h.DeleteClaim(claim), h.WaitEvent(kind, name, reason, wants...),
// h.Eventually(what, cond), each bounded by wait.
type harness struct {
	kit.Kube
	t      *testing.T
	ctx    context.Context
	c      kubernetes.Interface
	id     string // unique DNS label
	driver string
	ns     string
	logDir string
	bases  map[string]string // node name -> local base path
	procs  []*proc           // every stowage process started
	bs     []backend         // set up by backends()
}

var nonLabel = regexp.MustCompile(`[^a-z0-9]+`)

func newHarness(t *testing.T) *harness {
	t.Helper()
	if env.client == nil {
		t.Skip(env.skipReason)
	}
	short := strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(short) > 30 {
		short = strings.Trim(short[:30], "-")
	}
	id := fmt.Sprintf("%s-%04x", short, rand.IntN(0x10000))
	h := &harness{
		Kube: kit.Kube{Waiter: waiter(t, wait), Client: env.client, NS: id},
		t:    t, ctx: context.Background(), c: env.client, id: id,
		driver: id + ".it.stowage.io", ns: id, logDir: filepath.Join(env.logs, id),
		bases: map[string]string{},
	}
	if err := os.MkdirAll(h.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := h.c.CoreV1().Namespaces().Create(h.ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cleanup)
	return h
}

// sub is h for a subtest: failures end the subtest, not its parent.
func (h *harness) sub(t *testing.T) *harness {
	c := *h
	c.t = t
	c.Kube = h.For(t)
	return &c
}

// cleanup runs after the processes have stopped (Cleanup is LIFO): it
// removes what the test left in the shared control plane so that later
// tests see a tidy cluster. Backend directories of a passing test are
// removed too; a failing test keeps them and its logs for inspection.
func (h *harness) cleanup() {
	ctx := context.Background()
	_ = h.c.CoreV1().Namespaces().Delete(ctx, h.ns, metav1.DeleteOptions{})
	pvs, _ := h.c.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != h.driver {
			continue
		}
		if len(pv.Finalizers) > 0 {
			pv.Finalizers = nil
			_, _ = h.c.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{})
		}
		_ = h.c.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	}
	scs, _ := h.c.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	for _, sc := range scs.Items {
		if sc.Provisioner == h.driver {
			_ = h.c.StorageV1().StorageClasses().Delete(ctx, sc.Name, metav1.DeleteOptions{})
		}
	}
	for node := range h.bases {
		_ = h.c.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
	}
	if h.t.Failed() || os.Getenv("STOWAGE_TEST_KEEP") != "" {
		h.t.Logf("logs and local volumes of this test are in %s", h.logDir)
		return
	}
	if env.nfs != nil {
		_ = os.RemoveAll(filepath.Join(env.nfs.dir, h.id))
	}
	_ = os.RemoveAll(h.logDir)
}

// controller starts `stowage controller` serving NFS claims of this test's
// driver; name tells replicas apart in logs and in the lease.
func (h *harness) controller(name string, leaderElect bool, flags ...string) *proc {
	h.t.Helper()
	dir := h.sockDir()
	// POD_NAME is the identity a replica holds the lease under.
	args := append([]string{"controller",
		"--kubeconfig=" + env.kubeconfig, "--driver-name=" + h.driver,
		"--endpoint=unix://" + filepath.Join(dir, "csi.sock"),
		"--provisioner=true", fmt.Sprintf("--leader-elect=%v", leaderElect),
		"--leader-elect-namespace=" + h.ns}, flags...)
	return h.track(startProc(h.t, h.logDir, name, []string{"POD_NAME=" + name, "POD_NAMESPACE=" + h.ns}, args...))
}

// node creates Node object nodeName (what a kubelet would register) and
// starts `stowage node` for it, with a fresh local base path.
func (h *harness) node(nodeName string) *proc {
	h.t.Helper()
	_, err := h.c.CoreV1().Nodes().Create(h.ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: nodeName, Labels: map[string]string{nodeTopo: nodeName},
	}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		h.t.Fatal(err)
	}
	base := filepath.Join(h.logDir, "local-"+nodeName)
	h.bases[nodeName] = base
	return h.track(startProc(h.t, h.logDir, "node-"+nodeName, []string{"NODE_NAME=" + nodeName}, "node",
		"--kubeconfig="+env.kubeconfig, "--driver-name="+h.driver, "--node-id="+nodeName,
		"--local-base-path="+base, "--kubelet-registration-dir=",
		"--endpoint=unix://"+filepath.Join(h.sockDir(), "csi.sock"), "--provisioner=true"))
}

func (h *harness) track(p *proc) *proc {
	h.procs = append(h.procs, p)
	return p
}

// sockDir is a short directory for a unix socket (their paths are limited
// to about 100 bytes).
func (h *harness) sockDir() string {
	h.t.Helper()
	dir, err := os.MkdirTemp("", "stw-")
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// nodeName is a per-test node name, so tests never share Node objects.
func (h *harness) nodeName(suffix string) string { return h.id + "-" + suffix }

// nfsClass creates a StorageClass for the NFS server; volumes go under the
// test's own subdirectory of the export.
func (h *harness) nfsClass(name string, params map[string]string, mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	n := needNFS(h.t)
	p := map[string]string{"backend": "nfs", "server": n.server, "share": n.share, "subDir": h.id + "/${pv.name}"}
	for k, v := range params {
		if v == "" {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return h.class(name, p, storagev1.VolumeBindingImmediate, mod...)
}

func (h *harness) localClass(name string, params map[string]string, mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	p := map[string]string{"backend": "local"}
	for k, v := range params {
		p[k] = v
	}
	return h.class(name, p, storagev1.VolumeBindingWaitForFirstConsumer, mod...)
}

func (h *harness) class(name string, params map[string]string, binding storagev1.VolumeBindingMode, mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	h.t.Helper()
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: h.id + "-" + name},
		Provisioner:       h.driver,
		Parameters:        params,
		VolumeBindingMode: &binding,
	}
	for _, m := range mod {
		m(sc)
	}
	out, err := h.c.StorageV1().StorageClasses().Create(h.ctx, sc, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("create StorageClass %s: %v", sc.Name, err)
	}
	return out
}

// claim creates a claim of class sc; node, if set, is the selected node.
func (h *harness) claim(name string, sc *storagev1.StorageClass, node string, size string,
	modes []v1.PersistentVolumeAccessMode, mod ...func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	h.t.Helper()
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: modes,
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	if sc != nil {
		pvc.Spec.StorageClassName = &sc.Name
	}
	if node != "" {
		// What the scheduler does for a WaitForFirstConsumer claim.
		pvc.Annotations = map[string]string{annNode: node}
	}
	for _, m := range mod {
		m(pvc)
	}
	out, err := h.c.CoreV1().PersistentVolumeClaims(h.ns).Create(h.ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("create claim %s: %v", name, err)
	}
	return out
}

// pvsOfDriver lists the PVs of this test's driver.
func (h *harness) pvsOfDriver() []v1.PersistentVolume {
	h.t.Helper()
	list, err := h.c.CoreV1().PersistentVolumes().List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []v1.PersistentVolume
	for _, pv := range list.Items {
		if pv.Spec.CSI != nil && pv.Spec.CSI.Driver == h.driver {
			out = append(out, pv)
		}
	}
	return out
}

// volumeDir is where the volume of pv lives on this machine: under the
// directory behind the NFS export, or under the node's base path.
func (h *harness) volumeDir(pv *v1.PersistentVolume) string {
	h.t.Helper()
	id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
	if err != nil {
		h.t.Fatalf("PV %s: %v", pv.Name, err)
	}
	if id.Backend == volumeid.Local {
		base, ok := h.bases[id.Node]
		if !ok {
			h.t.Fatalf("PV %s is on node %s, which this test did not start", pv.Name, id.Node)
		}
		return filepath.Join(base, id.Dir)
	}
	return filepath.Join(needNFS(h.t).dir, id.Dir)
}

// nfsDir is this test's subdirectory of the export.
func (h *harness) nfsDir() string { return filepath.Join(needNFS(h.t).dir, h.id) }
