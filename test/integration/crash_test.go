package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// denyPVs makes the API server refuse op (CREATE or DELETE) on this test's
// PVs, with a ValidatingAdmissionPolicy, until the returned func is called.
// That holds the provisioner at a known point in the middle of its work, so
// that a test can kill it exactly there.
func (h *harness) denyPVs(op admissionv1.OperationType) (lift func()) {
	h.t.Helper()
	obj := "object"
	if op == admissionv1.Delete {
		obj = "oldObject"
	}
	name := h.id + "-deny-" + strings.ToLower(string(op))
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{op},
					Rule: admissionv1.Rule{
						APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"persistentvolumes"},
					},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf("!has(%s.spec.csi) || %s.spec.csi.driver != '%s'", obj, obj, h.driver),
				Message:    "held by the integration test",
			}},
		},
	}
	vap := h.c.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	if _, err := vap.Create(h.ctx, policy, metav1.CreateOptions{}); err != nil {
		h.t.Fatalf("create admission policy: %v", err)
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: name, ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	bindings := h.c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	if _, err := bindings.Create(h.ctx, binding, metav1.CreateOptions{}); err != nil {
		h.t.Fatalf("create admission policy binding: %v", err)
	}
	// The API server picks policies up asynchronously: probe with a dry run.
	probe := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-probe"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Mi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			StorageClassName:              name + "-probe",
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: h.driver, VolumeHandle: "probe#" + name,
			}},
		},
	}
	pvs := h.c.CoreV1().PersistentVolumes()
	if op == admissionv1.Delete {
		if _, err := pvs.Create(h.ctx, probe, metav1.CreateOptions{}); err != nil {
			h.t.Fatal(err)
		}
	}
	denied := func(context.Context) (bool, error) {
		var err error
		dry := []string{metav1.DryRunAll}
		if op == admissionv1.Delete {
			err = pvs.Delete(h.ctx, probe.Name, metav1.DeleteOptions{DryRun: dry})
		} else {
			_, err = pvs.Create(h.ctx, probe, metav1.CreateOptions{DryRun: dry})
		}
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), fmt.Errorf("dry-run answered: %v", err)
	}
	h.Eventually("admission policy "+name+" in force", denied)
	lift = func() {
		_ = bindings.Delete(h.ctx, name, metav1.DeleteOptions{})
		_ = vap.Delete(h.ctx, name, metav1.DeleteOptions{})
		h.Eventually("admission policy "+name+" lifted", func(ctx context.Context) (bool, error) {
			ok, state := denied(ctx)
			return !ok, state
		})
		if op == admissionv1.Delete {
			_ = pvs.Delete(h.ctx, probe.Name, metav1.DeleteOptions{})
		}
	}
	h.t.Cleanup(func() {
		_ = bindings.Delete(h.ctx, name, metav1.DeleteOptions{})
		_ = vap.Delete(h.ctx, name, metav1.DeleteOptions{})
	})
	return lift
}

// waitLog waits until p's log (of its current run) contains s.
func waitLog(t *testing.T, p *proc, s string) {
	t.Helper()
	waiter(t, wait).Eventually(fmt.Sprintf("%q in the log of %s", s, p.name), func(context.Context) (bool, error) {
		log := p.log()
		current := log[strings.LastIndex(log, "===== start"):]
		return strings.Contains(current, s), nil
	})
}

// TestKillDuringProvisioning: the provisioner is killed after it created the
// volume but before the PV exists. Restarted, it finishes the job: one PV,
// one directory, nothing leaked.
func TestKillDuringProvisioning(t *testing.T) {
	h := newHarness(t)
	for i, b := range h.backends() {
		t.Run(b.name, func(t *testing.T) {
			h := h.sub(t)
			p := h.procs[i]
			lift := h.denyPVs(admissionv1.Create)
			pvc := h.claimOn(b, b.name+"-data", b.class("crash", nil))
			waitLog(t, p, "Failed to save persistentvolume")
			dirs, _ := b.volumes()
			if len(dirs) != 1 {
				t.Fatalf("while the PV is refused, %s holds %v, want the one new volume", b.name, dirs)
			}
			p.kill()
			lift()
			p.restart()
			pv := h.WaitBound(pvc.Name)
			if want := "pvc-" + string(pvc.UID); pv.Name != want {
				t.Errorf("PV %s, want %s", pv.Name, want)
			}
			var forClaim []string
			for _, pv := range h.pvsOfDriver() {
				if ref := pv.Spec.ClaimRef; ref != nil && ref.Name == pvc.Name {
					forClaim = append(forClaim, pv.Name)
				}
			}
			if len(forClaim) != 1 {
				t.Errorf("PVs for the claim: %v, want one", forClaim)
			}
			dirs, recs := b.volumes()
			if len(dirs) != 1 || len(recs) != 1 {
				t.Errorf("%s holds directories %v and records %v, want one of each", b.name, dirs, recs)
			}
			if _, err := os.Stat(h.volumeDir(pv)); err != nil {
				t.Errorf("the PV's directory: %v", err)
			}
		})
	}
}

// TestKillDuringDeletion: the provisioner is killed after it removed the
// volume but before the PV object is gone; and, separately, it is down when
// the claim is deleted. Restarted, it finishes: no PV, no directory.
func TestKillDuringDeletion(t *testing.T) {
	h := newHarness(t)
	for i, b := range h.backends() {
		t.Run(b.name+"-after-volume-removed", func(t *testing.T) {
			h := h.sub(t)
			p := h.procs[i]
			pv, dir := bindWithData(h, b, b.name+"-data", b.class("crash", nil))
			lift := h.denyPVs(admissionv1.Delete)
			h.DeleteClaim(b.name + "-data")
			waitLog(t, p, "Failed to delete persistentvolume")
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Fatalf("volume directory %s should be gone before the PV delete is attempted (%v)", dir, err)
			}
			p.kill()
			lift()
			p.restart()
			h.WaitPVGone(pv.Name)
			h.expectNoVolumes(b)
		})
		t.Run(b.name+"-down-at-release", func(t *testing.T) {
			h := h.sub(t)
			p := h.procs[i]
			pv, dir := bindWithData(h, b, b.name+"-down", b.class("down", nil))
			p.kill()
			h.DeleteClaim(b.name + "-down")
			h.WaitPVPhase(pv.Name, v1.VolumeReleased)
			p.restart()
			h.WaitPVGone(pv.Name)
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Errorf("volume directory %s still exists (%v)", dir, err)
			}
			h.expectNoVolumes(b)
		})
	}
}

// TestPVDeletedBeforeClaim: an admin deletes a Bound PV with policy Delete;
// Kubernetes keeps it until its claim goes, and then the provisioner's
// finalizer still gets the directory removed.
func TestPVDeletedBeforeClaim(t *testing.T) {
	h := newHarness(t)
	for _, b := range h.backends() {
		t.Run(b.name, func(t *testing.T) {
			h := h.sub(t)
			pv, dir := bindWithData(h, b, b.name+"-data", b.class("early", nil))
			if err := h.c.CoreV1().PersistentVolumes().Delete(h.ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			terminating, err := h.GetPV(pv.Name)
			if err != nil || terminating.DeletionTimestamp == nil {
				t.Fatalf("PV after delete: %v, deletionTimestamp %v; want it kept while its claim exists", err, terminating)
			}
			if got := readTree(t, dir); !sameTree(got, sample) {
				t.Errorf("the data of a PV whose claim still exists changed: %v", got)
			}
			h.DeleteClaim(b.name + "-data")
			h.WaitPVGone(pv.Name)
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Errorf("volume directory %s still exists (%v)", dir, err)
			}
			h.expectNoVolumes(b)
		})
	}
}
