package chart

import (
	"slices"
	"strings"
	"testing"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// VolumeSnapshotClasses decode strictly like the Kubernetes kinds.
func init() { utilruntime.Must(snapshotv1.AddToScheme(scheme.Scheme)) }

// The CRDs are upstream's, copied unchanged; they are read loosely (client-go has no type for them)
// and checked for what the chart adds and what Stowage relies on.
const crdGroup = "apiextensions.k8s.io"

var snapshotCRDs = []string{
	"volumesnapshotclasses.snapshot.storage.k8s.io",
	"volumesnapshotcontents.snapshot.storage.k8s.io",
	"volumesnapshots.snapshot.storage.k8s.io",
}

// decodeCRD reads a CustomResourceDefinition; any other kind keeps notRegistered.
func decodeCRD(doc []byte, notRegistered error) (runtime.Object, *schema.GroupVersionKind, error) {
	js, err := utilyaml.ToJSON(doc)
	if err != nil {
		return nil, nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, nil, err
	}
	gvk := u.GroupVersionKind()
	if gvk.Group != crdGroup || gvk.Kind != "CustomResourceDefinition" {
		return nil, &gvk, notRegistered
	}
	return u, &gvk, nil
}

func crds(objs objects) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs.all {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetKind() == "CustomResourceDefinition" {
			m[u.GetName()] = u
		}
	}
	return m
}

func snapshotClasses(objs objects) map[string]*snapshotv1.VolumeSnapshotClass {
	m := map[string]*snapshotv1.VolumeSnapshotClass{}
	for _, o := range objs.all {
		if c, ok := o.(*snapshotv1.VolumeSnapshotClass); ok {
			m[c.Name] = c
		}
	}
	return m
}

// What Stowage's snapshotter and restores call, in both the controller's and the node plugin's role.
var snapshotRights = map[string][]string{
	"volumesnapshotcontents":        {"get", "list", "patch", "update", "watch"},
	"volumesnapshotcontents/status": {"patch", "update"},
	"volumesnapshotclasses":         {"get", "list", "watch"},
	"volumesnapshots":               {"get"},
}

func TestSnapshotsByDefault(t *testing.T) {
	objs := render(t)

	got := crds(objs)
	if !slices.Equal(keys(got), snapshotCRDs) {
		t.Errorf("CRDs %v, want %v", keys(got), snapshotCRDs)
	}
	for name, crd := range got {
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s is not kept on uninstall; deleting it deletes every object of its kind", name)
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		var served []string
		for _, v := range versions {
			if m, ok := v.(map[string]any); ok && m["served"] == true {
				served = append(served, m["name"].(string))
			}
		}
		if !slices.Contains(served, "v1") {
			t.Errorf("CRD %s does not serve v1 (served: %v)", name, served)
		}
	}

	classes := snapshotClasses(objs)
	if !slices.Equal(keys(classes), []string{"stowage-local", "stowage-nfs"}) {
		t.Errorf("VolumeSnapshotClasses %v, want stowage-local and stowage-nfs", keys(classes))
	}
	for name, c := range classes {
		if c.Driver != driver || c.DeletionPolicy != snapshotv1.VolumeSnapshotContentDelete {
			t.Errorf("VolumeSnapshotClass %s: driver %s, deletionPolicy %s; want %s, Delete", name, c.Driver, c.DeletionPolicy, driver)
		}
		// Their kind exists only once the CRDs are created, so Helm must create them afterwards.
		if c.Annotations["helm.sh/hook"] != "post-install,post-upgrade" {
			t.Errorf("VolumeSnapshotClass %s is not a post-install/upgrade hook; a first install could not map its kind", name)
		}
		if _, ok := c.Annotations["snapshot.storage.kubernetes.io/is-default-class"]; ok {
			t.Errorf("VolumeSnapshotClass %s is a default class without isDefault", name)
		}
	}

	checkSnapshotController(t, objs)
	for _, role := range []string{"stowage-controller", "stowage-node"} {
		r := must[*rbacv1.ClusterRole](t, objs, role)
		have := verbsByResource(r)
		for res, verbs := range snapshotRights {
			if !slices.Equal(have[res], verbs) {
				t.Errorf("ClusterRole %s grants %v on %s, want exactly %v", role, have[res], res, verbs)
			}
		}
	}
	checkSnapshotPolicy(t, objs)
}

func checkSnapshotController(t *testing.T, objs objects) {
	t.Helper()
	const name = "stowage-snapshot-controller"
	dep := must[*appsv1.Deployment](t, objs, name)
	if *dep.Spec.Replicas != 1 {
		t.Errorf("snapshot-controller replicas = %d, want 1", *dep.Spec.Replicas)
	}
	ps := dep.Spec.Template.Spec
	if ps.ServiceAccountName != name {
		t.Errorf("snapshot-controller runs as %q, want its own account %s", ps.ServiceAccountName, name)
	}
	if ps.HostNetwork || len(ps.Volumes) != 0 {
		t.Error("snapshot-controller must need no host network and no volumes")
	}
	if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("snapshot-controller pod securityContext = %+v, want non-root", ps.SecurityContext)
	}
	c := container(t, ps, "snapshot-controller")
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("snapshot-controller container securityContext = %+v", c.SecurityContext)
	}
	if c.Image != "localhost/snapshot-controller:v8.7.0" {
		t.Errorf("snapshot-controller image %s, want localhost/snapshot-controller:v8.7.0 (test/cluster/images.sh)", c.Image)
	}
	for _, a := range []string{"--leader-election=true", "--leader-election-namespace=$(POD_NAMESPACE)",
		"--enable-distributed-snapshotting=true", "--feature-gates=CSIVolumeGroupSnapshot=false"} {
		if !hasArg(c, a) {
			t.Errorf("snapshot-controller args %v lack %s", c.Args, a)
		}
	}
	// What pkg/common-controller of external-snapshotter v8.7.0 calls, group snapshots left out.
	want := map[string][]string{
		"persistentvolumes":             {"get", "list", "watch"},
		"persistentvolumeclaims":        {"get", "list", "update", "watch"},
		"nodes":                         {"get", "list", "watch"},
		"events":                        {"create", "patch", "update"},
		"volumesnapshotclasses":         {"get", "list", "watch"},
		"volumesnapshotcontents":        {"create", "delete", "get", "list", "patch", "update", "watch"},
		"volumesnapshotcontents/status": {"patch"},
		"volumesnapshots":               {"get", "list", "patch", "update", "watch"},
		"volumesnapshots/status":        {"patch", "update"},
	}
	cr := must[*rbacv1.ClusterRole](t, objs, name)
	if got := verbsByResource(cr); !verbMapsEqual(got, want) {
		t.Errorf("snapshot-controller ClusterRole grants %v, want exactly %v", got, want)
	}
	b := must[*rbacv1.ClusterRoleBinding](t, objs, name)
	if b.RoleRef.Name != name || len(b.Subjects) != 1 || b.Subjects[0].Name != name || b.Subjects[0].Namespace != "stowage" {
		t.Errorf("snapshot-controller ClusterRoleBinding = %+v", b)
	}
	role := must[*rbacv1.Role](t, objs, name)
	if role.Namespace != "stowage" || len(role.Rules) != 1 || !slices.Equal(role.Rules[0].Resources, []string{"leases"}) {
		t.Errorf("snapshot-controller Role = %+v, want leases in namespace stowage", role)
	}
	must[*rbacv1.RoleBinding](t, objs, name)
	must[*corev1.ServiceAccount](t, objs, name)
}

// checkSnapshotPolicy: the node plugin may write only contents labelled with its node. What the
// policy decides is tested on a real API server (test/integration).
func checkSnapshotPolicy(t *testing.T, objs objects) {
	t.Helper()
	p := must[*admissionregistrationv1.ValidatingAdmissionPolicy](t, objs, "stowage-node-snapshots")
	if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Fail {
		t.Error("snapshot policy: failurePolicy must be Fail")
	}
	rules := p.Spec.MatchConstraints.ResourceRules
	if len(rules) != 1 || !slices.Equal(rules[0].APIGroups, []string{"snapshot.storage.k8s.io"}) ||
		!slices.Equal(rules[0].Resources, []string{"volumesnapshotcontents", "volumesnapshotcontents/status"}) {
		t.Errorf("snapshot policy rules = %+v", rules)
	}
	if len(p.Spec.MatchConditions) != 1 || !strings.Contains(p.Spec.MatchConditions[0].Expression, "system:serviceaccount:stowage:stowage-node") {
		t.Errorf("snapshot policy match conditions = %+v, want the node plugin's account", p.Spec.MatchConditions)
	}
	var text strings.Builder
	for _, v := range p.Spec.Variables {
		text.WriteString(v.Expression + "\n")
	}
	for _, w := range []string{"snapshot.storage.kubernetes.io/managed-by", "authentication.kubernetes.io/node-name"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("snapshot policy does not read %s", w)
		}
	}
	b := must[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, objs, "stowage-node-snapshots")
	if b.Spec.PolicyName != p.Name || !slices.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{"Deny"}) {
		t.Errorf("snapshot policy binding = %+v", b.Spec)
	}
}

func TestSnapshotsOff(t *testing.T) {
	objs := render(t, "values/snapshots-off.yaml")
	if c := crds(objs); len(c) != 0 {
		t.Errorf("CRDs %v rendered with snapshots.enabled=false", keys(c))
	}
	if c := snapshotClasses(objs); len(c) != 0 {
		t.Errorf("VolumeSnapshotClasses %v rendered with snapshots.enabled=false", keys(c))
	}
	if _, ok := find[*appsv1.Deployment](objs, "stowage-snapshot-controller"); ok {
		t.Error("snapshot-controller rendered with snapshots.enabled=false")
	}
	if _, ok := find[*admissionregistrationv1.ValidatingAdmissionPolicy](objs, "stowage-node-snapshots"); ok {
		t.Error("snapshot admission policy rendered with snapshots.enabled=false")
	}
	for _, o := range objs.all {
		if r, ok := o.(*rbacv1.ClusterRole); ok {
			for res := range verbsByResource(r) {
				if strings.HasPrefix(res, "volumesnapshot") {
					t.Errorf("ClusterRole %s grants %s with snapshots.enabled=false", r.Name, res)
				}
			}
		}
	}
}

// A cluster with its own CRDs and snapshot-controller: only the classes, as the values say.
func TestSnapshotsExternalController(t *testing.T) {
	objs := render(t, "values/snapshots-external.yaml")
	if c := crds(objs); len(c) != 0 {
		t.Errorf("CRDs %v rendered with snapshots.crds.install=false", keys(c))
	}
	for _, o := range objs.all {
		if m, ok := o.(interface{ GetName() string }); ok && strings.Contains(m.GetName(), "snapshot-controller") {
			t.Errorf("%T %s rendered with snapshots.controller.enabled=false", o, m.GetName())
		}
	}
	classes := snapshotClasses(objs)
	if !slices.Equal(keys(classes), []string{"fast-local"}) {
		t.Fatalf("VolumeSnapshotClasses %v, want only fast-local (stowage-nfs is disabled)", keys(classes))
	}
	c := classes["fast-local"]
	if c.DeletionPolicy != snapshotv1.VolumeSnapshotContentRetain || c.Parameters["note"] != "kept" ||
		c.Annotations["snapshot.storage.kubernetes.io/is-default-class"] != "true" || c.Labels["stowage.io/backend"] != "local" {
		t.Errorf("fast-local = %+v", c)
	}
	// Stowage still cuts the snapshots, so its rights stay.
	if !grants(must[*rbacv1.ClusterRole](t, objs, "stowage-node"), "volumesnapshotcontents/status", "update") {
		t.Error("node plugin lost its snapshot rights with an external snapshot-controller")
	}
	checkSnapshotPolicy(t, objs)
}
