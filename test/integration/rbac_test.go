package integration

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
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	authnv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
)

// The user extra in which the API server names the node of a pod-bound service-account token.
const extraNodeName = "authentication.kubernetes.io/node-name"

// TestRBACNodePlugin installs the chart's service accounts, RBAC and node admission policy into the
// real API server and acts as the node plugin of one node, with the token the API server itself
// issues for a pod on that node (TokenRequest bound to the pod, as kubelet asks for it). The node
// plugin must be able to do its own work and nothing to other nodes' volumes, other drivers'
// volumes, or claims scheduled elsewhere; a token that names no node may do nothing at all.
//
// STOWAGE_TEST_CHART renders another chart directory (e.g. an older one, to see these checks fail).
func TestRBACNodePlugin(t *testing.T) {
	h := newHarness(t)
	sa := installChartRBAC(h)
	nodeA, nodeB := h.nodeName("node-a"), h.nodeName("node-b")
	for _, n := range []string{nodeA, nodeB} {
		h.createNode(n)
	}
	asA, tokenA := h.clientAs(h.podBoundToken(sa, nodeA))
	h.expectIdentity(asA, sa, nodeA)
	asNoNode, _ := h.clientAs(h.unboundToken(sa))
	h.expectIdentity(asNoNode, sa, "")
	h.waitNodePolicy(asA, nodeB)

	other := h.adminPV("other", "other.example.com", "local#"+nodeA+"#x")
	pvB := h.adminPV("b", h.driver, "local#"+nodeB+"#x")
	pvNFS := h.adminPV("nfs", h.driver, "nfs#10.0.0.5#/export#x")
	claimA := h.adminClaim("claim-a", nodeA)
	claimB := h.adminClaim("claim-b", nodeB)
	claimNone := h.adminClaim("claim-none", "")

	pvs := func(c kubernetes.Interface) *pvAPI { return &pvAPI{h: h, c: c} }
	a := pvs(asA)
	denied := func(t *testing.T, what string, err error, wants ...string) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Fatalf("%s: want a refusal, got %v", what, err)
		}
		t.Logf("%s: %v", what, err)
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s refused, but the message lacks %q: %v", what, w, err)
			}
		}
	}
	allowed := func(t *testing.T, what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: want it allowed, got %v", what, err)
		}
	}
	prefix := "local#" + nodeA + "#"

	t.Run("another driver's PV", func(t *testing.T) {
		denied(t, "update", a.annotate(other.Name), "refused", "other.example.com", prefix)
		denied(t, "patch finalizers", a.patchFinalizers(other.Name, "x.io/f"), "other.example.com")
		denied(t, "delete", a.delete(other.Name), "other.example.com")
	})
	t.Run("another node's PV", func(t *testing.T) {
		denied(t, "create local#node-b#", a.create("new-b", h.driver, "local#"+nodeB+"#y"), "local#"+nodeB+"#y", prefix)
		denied(t, "update", a.annotate(pvB.Name), "local#"+nodeB+"#x")
		denied(t, "patch finalizers", a.patchFinalizers(pvB.Name, "x.io/f"), "local#"+nodeB+"#x")
		denied(t, "update status", a.updateStatus(pvB.Name), "local#"+nodeB+"#x")
		denied(t, "delete", a.delete(pvB.Name), "local#"+nodeB+"#x")
	})
	t.Run("PVs that are not local volumes of the node", func(t *testing.T) {
		denied(t, "update an NFS PV", a.annotate(pvNFS.Name), "nfs#10.0.0.5")
		denied(t, "create a node-name prefix look-alike", a.create("alike", h.driver, "local#"+nodeA+"x#y"), prefix)
		hostPath := h.pvObject("hostpath", h.driver, "")
		hostPath.Spec.CSI = nil
		hostPath.Spec.HostPath = &v1.HostPathVolumeSource{Path: "/etc"}
		_, err := asA.CoreV1().PersistentVolumes().Create(h.ctx, hostPath, metav1.CreateOptions{})
		h.cleanupPV(hostPath.Name)
		denied(t, "create a hostPath PV", err, "no CSI source")
	})
	t.Run("own PV", func(t *testing.T) {
		name := "own"
		allowed(t, "create", a.create(name, h.driver, prefix+"own"))
		allowed(t, "update (recycler mark)", a.annotate(h.id+"-"+name))
		allowed(t, "patch finalizers (provisioner library)", a.patchFinalizers(h.id+"-"+name, "external-provisioner.volume.kubernetes.io/finalizer"))
		allowed(t, "update status (recycler)", a.updateStatus(h.id+"-"+name))
		allowed(t, "remove finalizers", a.patchFinalizers(h.id+"-"+name))
		allowed(t, "delete", a.delete(h.id+"-"+name))
	})
	t.Run("claims", func(t *testing.T) {
		denied(t, "update a claim selected for node-b", h.annotateClaim(asA, claimB), "is selected for node "+nodeB)
		denied(t, "update a claim with no selected node", h.annotateClaim(asA, claimNone), "has no selected node")
		allowed(t, "update a claim selected for node-a", h.annotateClaim(asA, claimA))
		// RBAC no longer grants patch on claims: nothing in Stowage patches them.
		_, err := asA.CoreV1().PersistentVolumeClaims(h.ns).Patch(h.ctx, claimA, types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
		denied(t, "patch a claim", err, "cannot patch")
	})
	t.Run("token without a node name", func(t *testing.T) {
		n := pvs(asNoNode)
		denied(t, "create a PV of node-a", n.create("nonode", h.driver, prefix+"nonode"), "names no node")
		denied(t, "update another driver's PV", n.annotate(other.Name), "names no node")
		denied(t, "update a claim selected for node-a", h.annotateClaim(asNoNode, claimA), "names no node")
	})
	// The real node plugin, with the same token, still provisions and deletes a local volume of its
	// node under the cut role and the policy: create, the library's finalizer patch, delete.
	t.Run("node plugin provisions and deletes under the policy", func(t *testing.T) {
		hs := h.sub(t)
		base := filepath.Join(hs.logDir, "local-"+nodeA)
		kubeconfig := hs.writeTokenKubeconfig(tokenA)
		hs.track(startProc(t, hs.logDir, "node-"+nodeA, []string{"NODE_NAME=" + nodeA}, "node",
			"--kubeconfig="+kubeconfig, "--driver-name="+hs.driver, "--node-id="+nodeA,
			"--local-base-path="+base, "--kubelet-registration-dir=",
			"--endpoint=unix://"+filepath.Join(hs.sockDir(), "csi.sock"), "--provisioner=true"))
		sc := hs.localClass("local", nil)
		hs.claim("vol", sc, nodeA, "64Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce})
		pv := hs.WaitBound("vol")
		if !strings.HasPrefix(pv.Spec.CSI.VolumeHandle, prefix) {
			t.Errorf("PV %s has handle %s, want %s...", pv.Name, pv.Spec.CSI.VolumeHandle, prefix)
		}
		hs.Eventually("the provisioner's finalizer on "+pv.Name, func(context.Context) (bool, error) {
			got, err := hs.GetPV(pv.Name)
			if err != nil {
				return false, err
			}
			return slices.Contains(got.Finalizers, "external-provisioner.volume.kubernetes.io/finalizer"), fmt.Errorf("finalizers %v", got.Finalizers)
		})
		hs.DeleteClaim("vol")
		hs.WaitPVGone(pv.Name)
	})
}

// installChartRBAC renders the chart (release h.id, namespace h.ns, driver h.driver) and creates its
// ServiceAccounts, RBAC and admission policies. It returns the node plugin's service account.
func installChartRBAC(h *harness) string {
	h.t.Helper()
	chart := os.Getenv("STOWAGE_TEST_CHART")
	if chart == "" {
		chart, _ = filepath.Abs("../../charts/stowage")
	}
	cmd := exec.Command(helmBinary(h.t), "template", h.id, chart, "--namespace", h.ns,
		"--kube-version", "1.34.4", "--set", "driverName="+h.driver)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		h.t.Fatalf("helm template %s: %v\n%s", chart, err, stderr.String())
	}
	dec := scheme.Codecs.UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var nodeSA string
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			h.t.Fatal(err)
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			continue // comment-only documents
		}
		if sa, ok := obj.(*v1.ServiceAccount); ok && strings.HasSuffix(sa.Name, "-node") {
			nodeSA = sa.Name
		}
		h.apply(obj)
	}
	if nodeSA == "" {
		h.t.Fatal("the chart rendered no node ServiceAccount")
	}
	return nodeSA
}

// apply creates the objects that decide what a service account may do; workloads, classes and the
// CSIDriver are left out. Cluster-scoped objects are removed after the test.
func (h *harness) apply(obj runtime.Object) {
	h.t.Helper()
	var err error
	var del func() error
	ctx, c := h.ctx, h.c
	opts := metav1.CreateOptions{}
	switch o := obj.(type) {
	case *v1.ServiceAccount:
		_, err = c.CoreV1().ServiceAccounts(h.ns).Create(ctx, o, opts)
	case *rbacv1.Role:
		_, err = c.RbacV1().Roles(h.ns).Create(ctx, o, opts)
	case *rbacv1.RoleBinding:
		_, err = c.RbacV1().RoleBindings(h.ns).Create(ctx, o, opts)
	case *rbacv1.ClusterRole:
		_, err = c.RbacV1().ClusterRoles().Create(ctx, o, opts)
		del = func() error { return c.RbacV1().ClusterRoles().Delete(ctx, o.Name, metav1.DeleteOptions{}) }
	case *rbacv1.ClusterRoleBinding:
		_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, o, opts)
		del = func() error { return c.RbacV1().ClusterRoleBindings().Delete(ctx, o.Name, metav1.DeleteOptions{}) }
	case *admissionv1.ValidatingAdmissionPolicy:
		_, err = c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, o, opts)
		del = func() error {
			return c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, o.Name, metav1.DeleteOptions{})
		}
	case *admissionv1.ValidatingAdmissionPolicyBinding:
		_, err = c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, o, opts)
		del = func() error {
			return c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, o.Name, metav1.DeleteOptions{})
		}
	default:
		return
	}
	if err != nil {
		h.t.Fatalf("create %T: %v", obj, err)
	}
	if del != nil {
		h.t.Cleanup(func() { _ = del() })
	}
}

func helmBinary(t *testing.T) string {
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	if p := filepath.Join(home, ".cache/stowage/k8s-v1.34.4/bin/helm"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm not found: set HELM, or run make deps (it caches helm in ~/.cache/stowage)")
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (h *harness) createNode(name string) {
	h.t.Helper()
	_, err := h.c.CoreV1().Nodes().Create(h.ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{nodeTopo: name},
	}}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = h.c.CoreV1().Nodes().Delete(h.ctx, name, metav1.DeleteOptions{}) })
}

// podBoundToken is what kubelet gets for the node plugin's pod on node: a pod that is bound to the
// node (it never runs; there is no kubelet) and a TokenRequest bound to that pod, into which the API
// server writes the pod's node.
func (h *harness) podBoundToken(sa, node string) string {
	h.t.Helper()
	pod, err := h.c.CoreV1().Pods(h.ns).Create(h.ctx, &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "node-plugin-" + node},
		Spec: v1.PodSpec{
			NodeName: node, ServiceAccountName: sa,
			Containers: []v1.Container{{Name: "stowage", Image: "localhost/stowage:never-runs"}},
			// No kubelet heartbeats: the node turns unreachable, and an evicted pod would void its token.
			Tolerations: []v1.Toleration{{Operator: v1.TolerationOpExists}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.token(sa, &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID})
}

// unboundToken is a token of the same account that names no pod and so no node: what a legacy
// Secret token or a plain `kubectl create token` gives.
func (h *harness) unboundToken(sa string) string { return h.token(sa, nil) }

func (h *harness) token(sa string, bound *authnv1.BoundObjectReference) string {
	h.t.Helper()
	secs := int64(3600)
	tr, err := h.c.CoreV1().ServiceAccounts(h.ns).CreateToken(h.ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{BoundObjectRef: bound, ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("TokenRequest for %s: %v", sa, err)
	}
	return tr.Status.Token
}

// clientAs is a client of the test's API server that authenticates with token only.
func (h *harness) clientAs(token string) (kubernetes.Interface, string) {
	h.t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		h.t.Fatal(err)
	}
	anon := rest.AnonymousClientConfig(rc)
	anon.BearerToken = token
	anon.WarningHandler = rest.NoWarnings{}
	c, err := kubernetes.NewForConfig(anon)
	if err != nil {
		h.t.Fatal(err)
	}
	return c, token
}

// expectIdentity asks the API server who c is: the node plugin's account, with node as the node
// name in its extra ("" for none).
func (h *harness) expectIdentity(c kubernetes.Interface, sa, node string) {
	h.t.Helper()
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(h.ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	u := r.Status.UserInfo
	if want := "system:serviceaccount:" + h.ns + ":" + sa; u.Username != want {
		h.t.Errorf("token authenticates as %s, want %s", u.Username, want)
	}
	got := u.Extra[extraNodeName]
	if node == "" && len(got) != 0 || node != "" && !slices.Equal(got, authnv1.ExtraValue{node}) {
		h.t.Fatalf("token's user extra %s = %v, want %q (extra: %v)", extraNodeName, got, node, u.Extra)
	}
}

// waitNodePolicy waits until the API server enforces the node policy (policies and RBAC reach the
// admission and authorization caches a moment after they are created) and checks that the policies'
// expressions type-check. It fails when nothing refuses a PV of another node: today's main chart.
func (h *harness) waitNodePolicy(c kubernetes.Interface, otherNode string) {
	h.t.Helper()
	a := &pvAPI{h: h, c: c}
	h.Within(30*time.Second).Eventually("the node policy to refuse a PV of another node", func(context.Context) (bool, error) {
		err := a.create("probe", h.driver, "local#"+otherNode+"#probe")
		if err == nil {
			_ = h.c.CoreV1().PersistentVolumes().Delete(h.ctx, h.id+"-probe", metav1.DeleteOptions{})
			return false, errors.New("the node plugin's token created a PV on node " + otherNode + " (no policy in force)")
		}
		return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "Stowage node plugin on node"), err
	})
	list, err := h.c.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(h.ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, p := range list.Items {
		if !strings.HasPrefix(p.Name, h.id) {
			continue
		}
		h.Within(30*time.Second).Eventually("type checking of policy "+p.Name, func(context.Context) (bool, error) {
			got, err := h.c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(h.ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if got.Status.ObservedGeneration != got.Generation || got.Status.TypeChecking == nil {
				return false, errors.New("not checked yet")
			}
			for _, w := range got.Status.TypeChecking.ExpressionWarnings {
				h.t.Errorf("policy %s: %s: %s", p.Name, w.FieldRef, w.Warning)
			}
			return true, nil
		})
	}
}

// pvAPI makes the PV calls the node plugin makes, as client c; PV names get the test's prefix.
type pvAPI struct {
	h *harness
	c kubernetes.Interface
}

func (a *pvAPI) create(name, driver, handle string) error {
	pv := a.h.pvObject(name, driver, handle)
	_, err := a.c.CoreV1().PersistentVolumes().Create(a.h.ctx, pv, metav1.CreateOptions{})
	if err == nil {
		a.h.cleanupPV(pv.Name)
	}
	return err
}

// annotate updates the PV as the recycler does; a conflict with the PV controller, which writes the
// status of new PVs, is retried, so that only the admission decision remains.
func (a *pvAPI) annotate(name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := a.h.c.CoreV1().PersistentVolumes().Get(a.h.ctx, name, metav1.GetOptions{})
		if err != nil {
			a.h.t.Fatal(err)
		}
		metav1.SetMetaDataAnnotation(&pv.ObjectMeta, "stowage.io/recycling-claim", "uid-of-a-deleted-claim")
		_, err = a.c.CoreV1().PersistentVolumes().Update(a.h.ctx, pv, metav1.UpdateOptions{})
		return err
	})
}

func (a *pvAPI) updateStatus(name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := a.h.c.CoreV1().PersistentVolumes().Get(a.h.ctx, name, metav1.GetOptions{})
		if err != nil {
			a.h.t.Fatal(err)
		}
		pv.Status.Message = "recycled by the rbac test"
		_, err = a.c.CoreV1().PersistentVolumes().UpdateStatus(a.h.ctx, pv, metav1.UpdateOptions{})
		return err
	})
}

func (a *pvAPI) patchFinalizers(name string, finalizers ...string) error {
	patch := fmt.Sprintf(`{"metadata":{"finalizers":%s}}`, jsonList(finalizers))
	_, err := a.c.CoreV1().PersistentVolumes().Patch(a.h.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func (a *pvAPI) delete(name string) error {
	return a.c.CoreV1().PersistentVolumes().Delete(a.h.ctx, name, metav1.DeleteOptions{})
}

func jsonList(s []string) string {
	if len(s) == 0 {
		return "null"
	}
	return `["` + strings.Join(s, `","`) + `"]`
}

func (h *harness) pvObject(name, driver, handle string) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: h.id + "-" + name},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			StorageClassName:              h.id + "-rbac-pvs", // no claim asks for it: nothing binds
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: driver, VolumeHandle: handle,
			}},
		},
	}
}

// adminPV creates a PV as the cluster admin; it is removed after the test (PVs of other drivers
// are not the harness's).
func (h *harness) adminPV(name, driver, handle string) *v1.PersistentVolume {
	h.t.Helper()
	pv, err := h.c.CoreV1().PersistentVolumes().Create(h.ctx, h.pvObject(name, driver, handle), metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.cleanupPV(pv.Name)
	return pv
}

func (h *harness) cleanupPV(name string) {
	h.t.Cleanup(func() {
		_, _ = h.c.CoreV1().PersistentVolumes().Patch(h.ctx, name, types.MergePatchType,
			[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		_ = h.c.CoreV1().PersistentVolumes().Delete(h.ctx, name, metav1.DeleteOptions{})
	})
}

// adminClaim creates a claim (of a class no provisioner serves) that the scheduler placed on node.
func (h *harness) adminClaim(name, node string) string {
	h.t.Helper()
	class := h.id + "-rbac-claims" // no class object, no PV of it: the claim stays Pending
	h.claim(name, nil, node, "1Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, func(c *v1.PersistentVolumeClaim) {
		c.Spec.StorageClassName = &class
	})
	return name
}

// annotateClaim updates a claim as c, the way the provisioner library does (an Update, not a Patch).
func (h *harness) annotateClaim(c kubernetes.Interface, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pvc, err := h.GetClaim(name)
		if err != nil {
			h.t.Fatal(err)
		}
		metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, "stowage.io/rbac-test", "touched")
		_, err = c.CoreV1().PersistentVolumeClaims(h.ns).Update(h.ctx, pvc, metav1.UpdateOptions{})
		return err
	})
}

// writeTokenKubeconfig is a kubeconfig for the test's API server that authenticates with token.
func (h *harness) writeTokenKubeconfig(token string) string {
	h.t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		h.t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["it"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthority: rc.CAFile, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos["node-plugin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["it"] = &clientcmdapi.Context{Cluster: "it", AuthInfo: "node-plugin"}
	cfg.CurrentContext = "it"
	path := filepath.Join(h.logDir, "node-plugin.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		h.t.Fatal(err)
	}
	return path
}
