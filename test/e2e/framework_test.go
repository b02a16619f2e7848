// Package e2e tests Stowage installed by Helm in a real cluster (test/cluster): the examples as
// their READMEs describe them, every access mode and reclaim policy through real pods, a node plugin
// restart under a mounted volume, and a clean uninstall. test/e2e/run.sh brings the cluster up,
// installs Stowage and runs these; by hand, source test/cluster/env.sh and run test/e2e/install.sh first.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stowage-csi/stowage/pkg/volumeid"
	"github.com/stowage-csi/stowage/test/internal/kit"
)

const (
	driverName = "csi.stowage.io"
	// Where the chart's release lives (test/e2e/install.sh).
	releaseName      = "stowage"
	releaseNamespace = "stowage"
	// The chart's default node.localBasePath; the node shares the host's filesystem, so the test
	// (on the host) sees local volumes there.
	defaultLocalBase = "/var/lib/stowage/local"

	// Upper bounds for things that normally take seconds. They only keep a broken cluster from
	// hanging the run; no test measures time.
	podTimeout  = 3 * time.Minute
	bindTimeout = 2 * time.Minute // claims, PVs and events
	poll        = time.Second
)

// env is the cluster under test and what test/cluster/env.sh says about it.
type env struct {
	client    kubernetes.Interface
	repo      string // repository root, for examples/ and the scripts
	nodeName  string
	nfsServer string // STOWAGE_NFS_SERVER: the host IP serving <server>:/export
	exportDir string // STOWAGE_NFS_EXPORT_DIR: the directory behind /export, on this host
	localBase string
	// afterNamespace: deletions of cluster-scoped objects (StorageClasses, PVs), run once the test's
	// namespace is gone, so that no claim still holds a PV that is being deleted.
	afterNamespace []func()
}

// setup returns the cluster, or skips the test when there is none to talk to.
func setup(t *testing.T) *env {
	t.Helper()
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Skip("KUBECONFIG is not set: these tests need the real cluster; run test/e2e/run.sh " +
			"(or test/cluster/up.sh, . test/cluster/env.sh, test/e2e/install.sh)")
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
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		client:    client,
		repo:      filepath.Clean(filepath.Join(wd, "..", "..")),
		nodeName:  os.Getenv("STOWAGE_NODE_NAME"),
		nfsServer: os.Getenv("STOWAGE_NFS_SERVER"),
		exportDir: os.Getenv("STOWAGE_NFS_EXPORT_DIR"),
		localBase: defaultLocalBase,
	}
	if e.nfsServer == "" || e.exportDir == "" || e.nodeName == "" {
		t.Fatal("STOWAGE_NFS_SERVER, STOWAGE_NFS_EXPORT_DIR or STOWAGE_NODE_NAME is empty: " +
			"source test/cluster/env.sh of a cluster whose NFS share is up")
	}
	return e
}

// waiter waits for t with this tier's poll interval; timeout only bounds a hang.
func waiter(t *testing.T, timeout time.Duration) kit.Waiter {
	return kit.Waiter{T: t, Timeout: timeout, Poll: poll}
}

// kube gives t the shared waits for claims of ns, their PVs and events (test/internal/kit), each
// bounded by bindTimeout: e.kube(t, ns).WaitBound(claim), .DeleteClaim(claim), .WaitPVPhase(pv,
// phase), .WaitPVGone(pv), .WaitEvent(kind, name, reason, wants...).
func (e *env) kube(t *testing.T, ns string) kit.Kube {
	return kit.Kube{Waiter: waiter(t, bindTimeout), Client: e.client, NS: ns}
}

// namespace creates a fresh namespace for one test and deletes it, and everything in it, at the end.
// The cleanup waits until the namespace is gone, so that the claims' volumes are released before the
// next test; on failure it first logs the namespace's events and pods.
func (e *env) namespace(t *testing.T, prefix string) string {
	t.Helper()
	ctx := context.Background()
	ns, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-" + prefix + "-", Labels: map[string]string{"stowage-e2e": "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	name := ns.Name
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpNamespace(t, name)
		}
		err := e.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
			return
		}
		waiter(t, podTimeout).WaitGone("namespace "+name, func(ctx context.Context) error {
			_, err := e.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			return err
		})
		late := e.afterNamespace
		e.afterNamespace = nil
		for i := len(late) - 1; i >= 0; i-- {
			late[i]()
		}
	})
	return name
}

// dumpNamespace logs what a failed test leaves behind, to say which component went wrong.
func (e *env) dumpNamespace(t *testing.T, ns string) {
	ctx := context.Background()
	if evs, err := e.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, ev := range evs.Items {
			t.Logf("event %s %s/%s %s: %s", ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
		}
	}
	if pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			t.Logf("pod %s: phase %s, conditions %v", p.Name, p.Status.Phase, p.Status.Conditions)
		}
	}
	if pvcs, err := e.client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range pvcs.Items {
			t.Logf("pvc %s: phase %s, volume %q", c.Name, c.Status.Phase, c.Spec.VolumeName)
		}
	}
	out, _ := exec.Command("kubectl", "-n", releaseNamespace, "logs", "-l", "app.kubernetes.io/instance="+releaseName,
		"--all-containers", "--prefix", "--tail=30").CombinedOutput()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if len(l) > 300 {
			l = l[:300] + "..."
		}
		lines = append(lines, l)
	}
	t.Logf("stowage logs (last lines):\n%s", strings.Join(lines, "\n"))
}

// readExample reads a file of examples/, with ${NFS_SERVER} rendered as `envsubst '${NFS_SERVER}'`
// would: only that variable, so that Stowage's own ${pvc.name} templates stay.
func (e *env) readExample(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.repo, "examples", rel))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(data, []byte("${NFS_SERVER}"), []byte(e.nfsServer))
}

// decode splits a multi-document manifest into typed objects.
func decode(t *testing.T, data []byte) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("read manifest: %v", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode manifest document: %v\n%s", err, doc)
		}
		objs = append(objs, obj)
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(append(out, line...), '\n')
		}
	}
	return out
}

// apply creates the objects of an example file in ns (made by e.namespace), as `kubectl apply -f`
// would on a fresh cluster. Cluster-scoped objects (StorageClasses, PVs) are deleted after the
// namespace, at the end of the test.
func (e *env) apply(t *testing.T, ns, rel string) []runtime.Object {
	t.Helper()
	objs := decode(t, e.readExample(t, rel))
	for _, obj := range objs {
		e.create(t, ns, obj)
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && e.bindsAtOnce(t, pvc) {
			// A pod created while its Immediate claim is still Pending fails to schedule, and
			// this cluster's kube-scheduler (v1.34) was seen not to retry it when the claim
			// bound a few milliseconds later, only at its 5-minute flush of unschedulable pods.
			// Waiting for Bound here, as a user would with `kubectl wait`, keeps the tests
			// about Stowage.
			e.kube(t, ns).WaitBound(pvc.Name)
		}
	}
	return objs
}

// bindsAtOnce reports whether Stowage provisions a claim without waiting for a pod: its class is
// one of Stowage's and binds Immediately. (Static claims are left alone: a test may expect one to
// stay Pending.)
func (e *env) bindsAtOnce(t *testing.T, pvc *corev1.PersistentVolumeClaim) bool {
	t.Helper()
	name := pvc.Spec.StorageClassName
	if name == nil || *name == "" {
		return false
	}
	sc, err := e.client.StorageV1().StorageClasses().Get(context.Background(), *name, metav1.GetOptions{})
	if err != nil || sc.Provisioner != "csi.stowage.io" {
		return false
	}
	return sc.VolumeBindingMode == nil || *sc.VolumeBindingMode == storagev1.VolumeBindingImmediate
}

// create creates one object; cluster-scoped ones get a cleanup.
func (e *env) create(t *testing.T, ns string, obj runtime.Object) {
	t.Helper()
	ctx := context.Background()
	c := e.client
	var err error
	switch o := obj.(type) {
	case *corev1.PersistentVolumeClaim:
		_, err = c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Pod:
		_, err = c.CoreV1().Pods(ns).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.Service:
		_, err = c.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
	case *corev1.ConfigMap:
		_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, o, metav1.CreateOptions{})
	case *appsv1.StatefulSet:
		_, err = c.AppsV1().StatefulSets(ns).Create(ctx, o, metav1.CreateOptions{})
	case *appsv1.Deployment:
		_, err = c.AppsV1().Deployments(ns).Create(ctx, o, metav1.CreateOptions{})
	case *batchv1.Job:
		_, err = c.BatchV1().Jobs(ns).Create(ctx, o, metav1.CreateOptions{})
	case *storagev1.StorageClass:
		_, err = c.StorageV1().StorageClasses().Create(ctx, o, metav1.CreateOptions{})
		name := o.Name
		e.afterNamespace = append(e.afterNamespace, func() { e.deleteStorageClass(t, name) })
	case *corev1.PersistentVolume:
		_, err = c.CoreV1().PersistentVolumes().Create(ctx, o, metav1.CreateOptions{})
		name := o.Name
		e.afterNamespace = append(e.afterNamespace, func() { e.deletePV(t, name) })
	default:
		t.Fatalf("apply: no client for %T", obj)
	}
	if err != nil {
		t.Fatalf("create %T: %v", obj, err)
	}
}

func (e *env) deleteStorageClass(t *testing.T, name string) {
	err := e.client.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete StorageClass %s: %v", name, err)
	}
}

// deletePV deletes a PV and waits until it is gone (the provisioner's finalizer may hold it while it
// deletes the volume).
func (e *env) deletePV(t *testing.T, name string) {
	err := e.client.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete PV %s: %v", name, err)
		return
	}
	e.kube(t, "").WaitPVGone(name)
}

// kubectl runs kubectl and returns its stdout and stderr together, for exec into containers
// (the repository's modules do not include client-go's streaming transports).
func kubectl(args ...string) (string, error) {
	out, err := exec.Command("kubectl", args...).CombinedOutput()
	return string(out), err
}

// execIn runs a shell command in a container and returns its output; the error includes the output.
func execIn(ns, pod, container, script string) (string, error) {
	args := []string{"-n", ns, "exec", pod}
	if container != "" {
		args = append(args, "-c", container)
	}
	out, err := kubectl(append(args, "--", "sh", "-c", script)...)
	if err != nil {
		return out, fmt.Errorf("exec %q in %s/%s: %w: %s", script, ns, pod, err, out)
	}
	return out, nil
}

// mustExec is execIn that fails the test.
func mustExec(t *testing.T, ns, pod, container, script string) string {
	t.Helper()
	out, err := execIn(ns, pod, container, script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// logs returns a container's log.
func (e *env) logs(t *testing.T, ns, pod, container string) string {
	t.Helper()
	raw, err := e.client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(context.Background())
	if err != nil {
		t.Fatalf("logs of %s/%s %s: %v", ns, pod, container, err)
	}
	return string(raw)
}

// waitLogs waits until a container's log contains every one of want.
func (e *env) waitLogs(t *testing.T, ns, pod, container string, want ...string) string {
	t.Helper()
	var got string
	waiter(t, podTimeout).Eventually(fmt.Sprintf("log of %s/%s %s contains %q", ns, pod, container, want), func(ctx context.Context) (bool, error) {
		raw, err := e.client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
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

// waitPodReady waits until the pod is Ready and returns it.
func (e *env) waitPodReady(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waiter(t, podTimeout).Eventually("pod "+ns+"/"+name+" Ready", func(ctx context.Context) (bool, error) {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("phase %s, conditions %v", p.Status.Phase, p.Status.Conditions)
	})
	return pod
}

// waitPodGone waits until a deleted pod has disappeared, which kubelet allows only once its volumes
// are unmounted.
func (e *env) waitPodGone(t *testing.T, ns, name string) {
	t.Helper()
	waiter(t, podTimeout).WaitGone("pod "+ns+"/"+name, func(ctx context.Context) error {
		_, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
}

// deletePod deletes a pod and waits until it is gone.
func (e *env) deletePod(t *testing.T, ns, name string) {
	t.Helper()
	if err := e.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
	e.waitPodGone(t, ns, name)
}

// replacePod deletes a pod that a controller (StatefulSet) recreates under the same name, and waits
// until the new one is Ready.
func (e *env) replacePod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	old, err := e.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod %s/%s: %v", ns, name, err)
	}
	waiter(t, podTimeout).Eventually("pod "+ns+"/"+name+" replaced", func(ctx context.Context) (bool, error) {
		p, err := e.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.UID != old.UID, nil
	})
	return e.waitPodReady(t, ns, name)
}

// patchPV applies a merge patch to a PV.
func (e *env) patchPV(t *testing.T, name, patch string) {
	t.Helper()
	_, err := e.client.CoreV1().PersistentVolumes().Patch(context.Background(), name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch PV %s with %s: %v", name, patch, err)
	}
}

// hostDir is where the volume of a Stowage PV lives on this host: the NFS export directory or the
// local base path (the test cluster's node shares the host's filesystem).
func (e *env) hostDir(t *testing.T, pv *corev1.PersistentVolume) string {
	t.Helper()
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driverName {
		t.Fatalf("PV %s is not a %s volume: %+v", pv.Name, driverName, pv.Spec.PersistentVolumeSource)
	}
	id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
	if err != nil {
		t.Fatalf("PV %s: %v", pv.Name, err)
	}
	if id.Backend == volumeid.Local {
		return filepath.Join(e.localBase, id.Dir)
	}
	if id.Server != e.nfsServer || id.Share != "/export" {
		t.Fatalf("PV %s is on %s:%s, not on the test share %s:/export", pv.Name, id.Server, id.Share, e.nfsServer)
	}
	return filepath.Join(e.exportDir, id.Dir)
}

// entries lists a directory on the host.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}
