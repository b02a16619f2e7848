// Package chart checks what charts/stowage renders, without a cluster: every object must decode
// strictly into its Kubernetes type (so a misspelt field fails here rather than being dropped by the
// API server), and the objects must keep the contracts the other components rely on (flags, paths,
// privileges, RBAC, StorageClass parameters). It needs helm; without it the tests are skipped.
// test/chart/check.sh runs them together with helm lint and the bad-values checks.
package chart

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

const driver = "csi.stowage.io"

// objects is one render, indexed by kind and name.
type objects struct {
	all []runtime.Object
}

func helmPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache/stowage/k8s-v1.34.4/bin/helm")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Skip("helm not found (set HELM); skipping chart render tests")
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// render runs helm template with the given value files and decodes the result strictly.
func render(t *testing.T, valueFiles ...string) objects {
	t.Helper()
	args := []string{"template", "stowage", filepath.Join(repoRoot(t), "charts/stowage"),
		"--namespace", "stowage", "--kube-version", "1.34.4"}
	for _, f := range valueFiles {
		args = append(args, "-f", f)
	}
	cmd := exec.Command(helmPath(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return decode(t, out)
}

func decode(t *testing.T, manifest []byte) objects {
	t.Helper()
	codecs := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)
	dec := codecs.UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var objs objects
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("split YAML: %v", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if runtime.IsNotRegisteredError(err) {
			obj, gvk, err = decodeMonitoring(doc, err) // prometheus-operator kinds: metrics_test.go
		}
		if runtime.IsNotRegisteredError(err) {
			obj, gvk, err = decodeCRD(doc, err) // the snapshot CRDs: snapshots_test.go
		}
		if err != nil {
			t.Errorf("strict decode failed: %v\n%s", err, doc)
			continue
		}
		if gvk.Kind == "" {
			t.Errorf("document without kind:\n%s", doc)
		}
		objs.all = append(objs.all, obj)
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

func find[T runtime.Object](objs objects, name string) (T, bool) {
	var zero T
	for _, o := range objs.all {
		if v, ok := o.(T); ok {
			if m, ok := o.(interface{ GetName() string }); ok && m.GetName() == name {
				return v, true
			}
		}
	}
	return zero, false
}

func must[T runtime.Object](t *testing.T, objs objects, name string) T {
	t.Helper()
	v, ok := find[T](objs, name)
	if !ok {
		var zero T
		t.Fatalf("rendered no %T named %q", zero, name)
	}
	return v
}

func storageClasses(objs objects) map[string]*storagev1.StorageClass {
	m := map[string]*storagev1.StorageClass{}
	for _, o := range objs.all {
		if sc, ok := o.(*storagev1.StorageClass); ok {
			m[sc.Name] = sc
		}
	}
	return m
}

func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func hasArg(c corev1.Container, arg string) bool { return slices.Contains(c.Args, arg) }

func TestDefaults(t *testing.T) {
	objs := render(t)

	d := must[*storagev1.CSIDriver](t, objs, driver)
	if *d.Spec.AttachRequired || *d.Spec.RequiresRepublish {
		t.Errorf("CSIDriver: attachRequired, requiresRepublish must default to false: %+v", d.Spec)
	}
	// Inline volumes: kubelet marks them, and names their pod, only with podInfoOnMount.
	if !*d.Spec.PodInfoOnMount {
		t.Errorf("CSIDriver podInfoOnMount = false; inline ephemeral volumes need it")
	}
	if *d.Spec.FSGroupPolicy != storagev1.FileFSGroupPolicy {
		t.Errorf("CSIDriver fsGroupPolicy = %s, want File", *d.Spec.FSGroupPolicy)
	}
	if !slices.Equal(d.Spec.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent, storagev1.VolumeLifecycleEphemeral}) {
		t.Errorf("CSIDriver volumeLifecycleModes = %v, want [Persistent Ephemeral]", d.Spec.VolumeLifecycleModes)
	}

	// Controller: unprivileged, leader-elected, two replicas, no sidecar.
	dep := must[*appsv1.Deployment](t, objs, "stowage-controller")
	if *dep.Spec.Replicas != 2 {
		t.Errorf("controller replicas = %d, want 2", *dep.Spec.Replicas)
	}
	ps := dep.Spec.Template.Spec
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Error("controller must not use host namespaces")
	}
	if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("controller pod securityContext = %+v", ps.SecurityContext)
	}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			t.Errorf("controller mounts hostPath %s; it must need no host access", v.HostPath.Path)
		}
	}
	if len(ps.Containers) != 1 {
		t.Errorf("controller has %d containers, want 1 without attachRequired", len(ps.Containers))
	}
	c := container(t, ps, "stowage")
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Privileged != nil && *sc.Privileged ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("controller container securityContext = %+v", c.SecurityContext)
	}
	if c.Image != "localhost/stowage:dev" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("controller image %s (%s), want localhost/stowage:dev (IfNotPresent)", c.Image, c.ImagePullPolicy)
	}
	for _, a := range []string{"controller", "--endpoint=unix:///csi/csi.sock", "--driver-name=" + driver,
		"--health-addr=:9808", "--provisioner=true", "--leader-elect=true",
		"--leader-elect-namespace=$(POD_NAMESPACE)", "--kube-api-qps=300", "--kube-api-burst=600", "--v=2"} {
		if !hasArg(c, a) {
			t.Errorf("controller args %v lack %s", c.Args, a)
		}
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "healthz" {
			t.Errorf("controller probe = %+v, want httpGet /healthz on port healthz", p)
		}
	}

	// Node plugin: privileged, registers itself, kubelet paths with the right propagation.
	ds := must[*appsv1.DaemonSet](t, objs, "stowage-node")
	nps := ds.Spec.Template.Spec
	n := container(t, nps, "stowage")
	if len(nps.Containers) != 1 {
		t.Errorf("node plugin has %d containers; it needs no registrar or livenessprobe sidecar", len(nps.Containers))
	}
	if n.SecurityContext == nil || n.SecurityContext.Privileged == nil || !*n.SecurityContext.Privileged {
		t.Error("node plugin must be privileged (mounts)")
	}
	for _, a := range []string{"node", "--endpoint=unix:///csi/csi.sock", "--node-id=$(NODE_NAME)",
		"--driver-name=" + driver, "--local-base-path=/var/lib/stowage/local",
		"--kubelet-registration-dir=/registration",
		"--kubelet-plugin-endpoint=/var/lib/kubelet/plugins/csi.stowage.io/csi.sock",
		"--health-addr=:9809", "--provisioner=true", "--kube-api-qps=300", "--kube-api-burst=600", "--v=2"} {
		if !hasArg(n, a) {
			t.Errorf("node args %v lack %s", n.Args, a)
		}
	}
	if p := n.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("node liveness probe = %+v, want httpGet /healthz", p)
	}
	env := map[string]string{}
	for _, e := range n.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["NODE_NAME"] != "spec.nodeName" || env["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("node env from fieldRef = %v, want NODE_NAME=spec.nodeName, POD_NAMESPACE=metadata.namespace", env)
	}
	hostPaths := map[string]string{} // volume name -> host path
	for _, v := range nps.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]corev1.VolumeMount{} // mount path -> mount
	for _, m := range n.VolumeMounts {
		mounts[m.MountPath] = m
	}
	bidi := corev1.MountPropagationBidirectional
	for _, want := range []struct {
		host, path  string
		propagation *corev1.MountPropagationMode
	}{
		{"/var/lib/kubelet/plugins/csi.stowage.io", "/csi", nil},
		{"/var/lib/kubelet/plugins_registry", "/registration", nil},
		{"/var/lib/kubelet/pods", "/var/lib/kubelet/pods", &bidi},
		{"/var/lib/stowage/local", "/var/lib/stowage/local", &bidi},
	} {
		m, ok := mounts[want.path]
		if !ok {
			t.Errorf("node plugin does not mount %s", want.path)
			continue
		}
		if hostPaths[m.Name] != want.host {
			t.Errorf("node mount %s comes from host %q, want %q", want.path, hostPaths[m.Name], want.host)
		}
		if want.propagation != nil && (m.MountPropagation == nil || *m.MountPropagation != *want.propagation) {
			t.Errorf("node mount %s must use mountPropagation %s", want.path, *want.propagation)
		}
	}

	// Classes: local only until an NFS server is known.
	classes := storageClasses(objs)
	if _, ok := classes["stowage-nfs"]; ok {
		t.Error("stowage-nfs rendered without an NFS server")
	}
	local, ok := classes["stowage-local"]
	if !ok {
		t.Fatal("no stowage-local class")
	}
	if local.Provisioner != driver || *local.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		local.Parameters["backend"] != "local" || *local.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Errorf("stowage-local = %+v", local)
	}
	if len(classes) != 1 {
		t.Errorf("default classes = %v, want only stowage-local", keys(classes))
	}

	// RBAC: per component, leases only in the namespace, nothing for the attacher.
	cr := must[*rbacv1.ClusterRole](t, objs, "stowage-controller")
	for _, r := range cr.Rules {
		if slices.Contains(r.Resources, "leases") {
			t.Error("controller ClusterRole grants leases cluster-wide; they belong in the namespaced Role")
		}
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") {
			t.Errorf("controller ClusterRole uses a wildcard: %+v", r)
		}
	}
	role := must[*rbacv1.Role](t, objs, "stowage-controller")
	if role.Namespace != "stowage" || len(role.Rules) != 1 || role.Rules[0].Resources[0] != "leases" {
		t.Errorf("controller Role = %+v, want leases in namespace stowage", role)
	}
	nr := must[*rbacv1.ClusterRole](t, objs, "stowage-node")
	// What the provisioners, the recycler (pkg/reclaim) and ControllerPublishVolume call.
	for _, want := range [][2]string{{"persistentvolumes", "create"}, {"persistentvolumes", "delete"},
		{"persistentvolumes", "update"}, {"persistentvolumes/status", "update"},
		{"persistentvolumeclaims", "watch"}, {"storageclasses", "watch"}, {"events", "create"}, {"nodes", "get"}} {
		for _, r := range []*rbacv1.ClusterRole{cr, nr} {
			if !grants(r, want[0], want[1]) {
				t.Errorf("ClusterRole %s does not grant %s on %s", r.Name, want[1], want[0])
			}
		}
	}
	// Exactly what the code calls, nothing more (docs/security.md names the call for each verb).
	wantNode := map[string][]string{
		"persistentvolumes":             {"create", "delete", "get", "list", "patch", "update", "watch"},
		"persistentvolumes/status":      {"update"},
		"persistentvolumeclaims":        {"get", "list", "update", "watch"},
		"persistentvolumeclaims/status": {"patch"},
		"storageclasses":                {"get", "list", "watch"},
		"events":                        {"create", "patch"},
		"nodes":                         {"get"},
	}
	maps.Copy(wantNode, snapshotRights) // snapshots_test.go
	if got := verbsByResource(nr); !verbMapsEqual(got, wantNode) {
		t.Errorf("node ClusterRole grants %v, want exactly %v", got, wantNode)
	}
	for _, r := range []*rbacv1.ClusterRole{cr, nr} {
		if grants(r, "persistentvolumeclaims", "patch") || grants(r, "persistentvolumeclaims", "delete") ||
			grants(r, "persistentvolumeclaims", "create") {
			t.Errorf("ClusterRole %s may patch, create or delete claims; nothing in Stowage does", r.Name)
		}
	}
	checkNodePolicies(t, objs, "stowage", "stowage-node", driver)
	if _, ok := find[*rbacv1.ClusterRole](objs, "stowage-attacher"); ok {
		t.Error("attacher RBAC rendered without attachRequired")
	}
	must[*corev1.ServiceAccount](t, objs, "stowage-controller")
	must[*corev1.ServiceAccount](t, objs, "stowage-node")
}

func TestAttach(t *testing.T) {
	objs := render(t, "values/attach.yaml")
	d := must[*storagev1.CSIDriver](t, objs, driver)
	if !*d.Spec.AttachRequired {
		t.Error("attachRequired not rendered")
	}
	ps := must[*appsv1.Deployment](t, objs, "stowage-controller").Spec.Template.Spec
	a := container(t, ps, "csi-attacher")
	if a.Image != "localhost/csi-attacher:v4.13.0" {
		t.Errorf("attacher image = %s", a.Image)
	}
	for _, arg := range []string{"--csi-address=/csi/csi.sock", "--leader-election", "--leader-election-namespace=$(POD_NAMESPACE)"} {
		if !hasArg(a, arg) {
			t.Errorf("attacher args %v lack %s", a.Args, arg)
		}
	}
	if len(a.VolumeMounts) != 1 || a.VolumeMounts[0].Name != "socket-dir" {
		t.Errorf("attacher must share the socket-dir emptyDir: %+v", a.VolumeMounts)
	}
	cr := must[*rbacv1.ClusterRole](t, objs, "stowage-attacher")
	var resources []string
	for _, r := range cr.Rules {
		resources = append(resources, r.Resources...)
	}
	for _, want := range []string{"volumeattachments", "volumeattachments/status", "csinodes", "persistentvolumes"} {
		if !slices.Contains(resources, want) {
			t.Errorf("attacher ClusterRole lacks %s", want)
		}
	}
	b := must[*rbacv1.ClusterRoleBinding](t, objs, "stowage-attacher")
	if b.Subjects[0].Name != "stowage-controller" {
		t.Errorf("attacher role bound to %s, want the controller's service account", b.Subjects[0].Name)
	}
}

func TestNFSClasses(t *testing.T) {
	classes := storageClasses(render(t, "values/nfs.yaml"))
	nfs, ok := classes["stowage-nfs"]
	if !ok {
		t.Fatalf("stowage-nfs not rendered although nfs.server is set; got %v", keys(classes))
	}
	want := map[string]string{"backend": "nfs", "server": "10.0.0.5", "share": "/export",
		"subDir": "${pvc.namespace}-${pvc.name}-${pv.name}", "dirMode": "0777", "onDelete": "archive"}
	if !mapsEqual(nfs.Parameters, want) {
		t.Errorf("stowage-nfs parameters = %v, want %v", nfs.Parameters, want)
	}
	if *nfs.VolumeBindingMode != storagev1.VolumeBindingImmediate || nfs.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("stowage-nfs binding %s, annotations %v", *nfs.VolumeBindingMode, nfs.Annotations)
	}
	if !slices.Equal(nfs.MountOptions, []string{"nfsvers=4.1", "hard"}) {
		t.Errorf("stowage-nfs mountOptions = %v, want nfs.mountOptions", nfs.MountOptions)
	}

	rec, ok := classes["stowage-nfs-recycle"]
	if !ok {
		t.Fatal("stowage-nfs-recycle not rendered although enabled")
	}
	if rec.Parameters["reclaimPolicy"] != "Recycle" || *rec.ReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("recycle class: parameters %v, reclaimPolicy %s; want parameter Recycle, class Retain", rec.Parameters, *rec.ReclaimPolicy)
	}

	other := classes["other-nfs"]
	if other == nil || other.Parameters["server"] != "nfs.example.com" || other.Parameters["share"] != "/srv/other" ||
		!slices.Equal(other.MountOptions, []string{"nfsvers=3", "nolock"}) ||
		*other.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		t.Errorf("other-nfs = %+v", other)
	}
	if l := classes["stowage-local"]; l == nil || l.Parameters["dirMode"] != "0770" || len(l.MountOptions) != 0 {
		t.Errorf("stowage-local = %+v", l)
	}
}

func TestPerClassNFS(t *testing.T) {
	classes := storageClasses(render(t, "values/nfs-per-class.yaml"))
	own := classes["own-nfs"]
	if own == nil || own.Parameters["server"] != "192.168.1.10" || own.Parameters["share"] != "/exports/k8s" {
		t.Errorf("own-nfs = %+v", own)
	}
	if len(classes) != 2 {
		t.Errorf("classes = %v", keys(classes))
	}
}

func TestTestClusterValues(t *testing.T) {
	objs := render(t, "values/test-cluster.yaml")
	ds := must[*appsv1.DaemonSet](t, objs, "stowage-node")
	n := container(t, ds.Spec.Template.Spec, "stowage")
	if !hasArg(n, "--kubelet-plugin-endpoint=/var/lib/kubelet/plugins/csi.stowage.io/csi.sock") {
		t.Errorf("a trailing slash in kubeletDir leaked into the args: %v", n.Args)
	}
	if n.Image != "localhost/stowage:e2e" || n.ImagePullPolicy != corev1.PullNever {
		t.Errorf("node image %s (%s)", n.Image, n.ImagePullPolicy)
	}
	var found bool
	for _, m := range n.VolumeMounts {
		found = found || m.MountPath == "/sbin/mount.nfs"
	}
	if !found {
		t.Error("node.extraVolumeMounts not rendered")
	}
	if len(ds.Spec.Template.Spec.Tolerations) != 0 {
		t.Error("tolerations: [] should render none")
	}
	dep := must[*appsv1.Deployment](t, objs, "stowage-controller")
	if u := dep.Spec.Template.Spec.SecurityContext.RunAsUser; u == nil || *u != 1000 {
		t.Errorf("controller runAsUser = %v, want 1000", u)
	}
	if s := dep.Spec.Strategy.RollingUpdate.MaxUnavailable; s.IntValue() != 0 {
		t.Errorf("one controller replica must not be taken down before its successor runs (maxUnavailable %s)", s)
	}
}

// The node policy follows the release's namespace, names and driver name.
func TestNodePolicyNames(t *testing.T) {
	objs := render(t, "values/other-driver.yaml")
	checkNodePolicies(t, objs, "stowage", "stowage-node", "nfs.example.org")
}

func TestNoNodePolicy(t *testing.T) {
	for _, values := range []string{"values/no-admission-policy.yaml", "values/minimal.yaml"} {
		objs := render(t, values)
		for _, o := range objs.all {
			switch o.(type) {
			case *admissionregistrationv1.ValidatingAdmissionPolicy, *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
				t.Errorf("%s: admission policy rendered although node.admissionPolicy or node.provisioner is off", values)
			}
		}
	}
}

func TestMinimal(t *testing.T) {
	objs := render(t, "values/minimal.yaml")
	for _, name := range []string{"stowage-controller", "stowage-node"} {
		if _, ok := find[*rbacv1.ClusterRole](objs, name); ok {
			t.Errorf("ClusterRole %s rendered although its provisioner is off", name)
		}
	}
	if _, ok := find[*rbacv1.Role](objs, "stowage-controller"); ok {
		t.Error("leader-election Role rendered although nothing is elected")
	}
	if len(storageClasses(objs)) != 0 {
		t.Error("classes rendered from an empty list")
	}
	if must[*appsv1.DaemonSet](t, objs, "stowage-node").Spec.Template.Spec.HostNetwork {
		t.Error("node.hostNetwork: false ignored")
	}
}

// Every good value set must decode strictly; the specific tests above look at a few of them closely.
func TestAllValueSetsDecode(t *testing.T) {
	files, err := filepath.Glob("values/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no value sets in values/: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { render(t, f) })
	}
}

// deploy/stowage.yaml must decode strictly too, and hold the chart's objects plus the namespace.
func TestDeployManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/stowage.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, data)
	ns := must[*corev1.Namespace](t, objs, "stowage")
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Error("namespace must allow the privileged node plugin")
	}
	must[*appsv1.DaemonSet](t, objs, "stowage-node")
	must[*appsv1.Deployment](t, objs, "stowage-controller")
}

// checkNodePolicies checks the two policies that hold the node plugin (service account ns/sa) to
// its own node: what they match, that they refuse on error, and that they name the driver. What they
// decide is tested on a real API server in test/integration/rbac_test.go.
func checkNodePolicies(t *testing.T, objs objects, ns, sa, driverName string) {
	t.Helper()
	user := "request.userInfo.username == 'system:serviceaccount:" + ns + ":" + sa + "'"
	for _, kind := range []struct {
		name      string
		resources []string
		wants     []string
	}{
		{sa + "-volumes", []string{"persistentvolumes", "persistentvolumes/status"},
			[]string{"object.spec.csi.driver == '" + driverName + "'", "volumeHandle.startsWith(variables.prefix)",
				"'local#' + variables.node + '#'", "authentication.kubernetes.io/node-name"}},
		{sa + "-claims", []string{"persistentvolumeclaims", "persistentvolumeclaims/status"},
			[]string{"volume.kubernetes.io/selected-node", "authentication.kubernetes.io/node-name"}},
	} {
		p := must[*admissionregistrationv1.ValidatingAdmissionPolicy](t, objs, kind.name)
		if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("policy %s: failurePolicy must be Fail", p.Name)
		}
		if len(p.Spec.MatchConditions) != 1 || p.Spec.MatchConditions[0].Expression != user {
			t.Errorf("policy %s match conditions = %+v, want %s", p.Name, p.Spec.MatchConditions, user)
		}
		rules := p.Spec.MatchConstraints.ResourceRules
		if len(rules) != 1 || !slices.Equal(rules[0].Resources, kind.resources) ||
			!slices.Equal(rules[0].Operations, []admissionregistrationv1.OperationType{"CREATE", "UPDATE", "DELETE"}) {
			t.Errorf("policy %s rules = %+v, want CREATE/UPDATE/DELETE on %v", p.Name, rules, kind.resources)
		}
		var text strings.Builder
		for _, v := range p.Spec.Variables {
			text.WriteString(v.Expression + "\n")
		}
		for _, v := range p.Spec.Validations {
			text.WriteString(v.Expression + "\n")
			if v.MessageExpression == "" || v.Reason == nil || *v.Reason != metav1.StatusReasonForbidden {
				t.Errorf("policy %s: validation %q needs a messageExpression and reason Forbidden", p.Name, v.Expression)
			}
		}
		for _, w := range kind.wants {
			if !strings.Contains(text.String(), w) {
				t.Errorf("policy %s does not check %s", p.Name, w)
			}
		}
		b := must[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, objs, kind.name)
		if b.Spec.PolicyName != p.Name || !slices.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{"Deny"}) ||
			b.Spec.ParamRef != nil || b.Spec.MatchResources != nil {
			t.Errorf("binding %s = %+v, want policy %s, Deny, everywhere", b.Name, b.Spec, p.Name)
		}
	}
}

func verbsByResource(r *rbacv1.ClusterRole) map[string][]string {
	m := map[string][]string{}
	for _, rule := range r.Rules {
		for _, res := range rule.Resources {
			m[res] = append(m[res], rule.Verbs...)
		}
	}
	for k := range m {
		slices.Sort(m[k])
		m[k] = slices.Compact(m[k])
	}
	return m
}

func verbMapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func grants(r *rbacv1.ClusterRole, resource, verb string) bool {
	for _, rule := range r.Rules {
		if slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
