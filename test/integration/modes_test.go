package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// TestAccessModes provisions one claim per access mode on each backend:
// what the backend can honour is Bound with a PV that says so, the rest is
// refused with an event that names the mode, the backend and what to use.
func TestAccessModes(t *testing.T) {
	h := newHarness(t)
	retain := v1.PersistentVolumeReclaimRetain
	type result struct {
		backend backend
		mode    v1.PersistentVolumeAccessMode
		claim   string
		class   *storagev1.StorageClass
		refused bool
	}
	var results []result
	for _, b := range h.backends() {
		sc := b.class("modes", nil, func(sc *storagev1.StorageClass) {
			sc.MountOptions = []string{"noatime"}
			sc.ReclaimPolicy = &retain
		})
		for _, m := range []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce, v1.ReadOnlyMany, v1.ReadWriteMany, v1.ReadWriteOncePod} {
			name := strings.ToLower(fmt.Sprintf("%s-%s", b.name, m))
			h.claimOn(b, name, sc, m)
			refused := b.name == "local" && (m == v1.ReadOnlyMany || m == v1.ReadWriteMany)
			results = append(results, result{b, m, name, sc, refused})
		}
	}

	for _, r := range results {
		t.Run(r.claim, func(t *testing.T) {
			h := h.sub(t)
			if r.refused {
				h.WaitEvent("PersistentVolumeClaim", r.claim, "ProvisioningFailed", string(r.mode), "local backend", "NFS")
				pvc, err := h.GetClaim(r.claim)
				if err != nil {
					t.Fatal(err)
				}
				if pvc.Status.Phase != v1.ClaimPending || pvc.Spec.VolumeName != "" {
					t.Errorf("refused claim is %s with volume %q", pvc.Status.Phase, pvc.Spec.VolumeName)
				}
				return
			}
			pv := h.WaitBound(r.claim)
			checkPV(t, h, pv, r.class, r.mode, r.backend)
		})
	}
	t.Run("refusals leave nothing behind", func(t *testing.T) {
		for _, b := range h.backends() {
			dirs, _ := b.volumes()
			want := 4
			if b.name == "local" {
				want = 2
			}
			if len(dirs) != want {
				t.Errorf("%s backend holds %d volume directories %v, want %d (one per Bound claim)", b.name, len(dirs), dirs, want)
			}
		}
		if n := len(h.pvsOfDriver()); n != len(results)-2 {
			t.Errorf("%d PVs exist, want %d", n, len(results)-2)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		for _, p := range h.procs {
			var text string
			waiter(t, wait).Eventually(p.name+" provisioning metrics", func(context.Context) (bool, error) {
				var err error
				text, err = p.metrics()
				if err != nil {
					return false, err
				}
				return strings.Contains(text, "controller_persistentvolumeclaim_provision_total{"), errors.New("no provision_total yet")
			})
		}
	})
}

// checkPV checks the PV the provisioner wrote for a claim of class sc.
func checkPV(t *testing.T, h *harness, pv *v1.PersistentVolume, sc *storagev1.StorageClass, mode v1.PersistentVolumeAccessMode, b backend) {
	t.Helper()
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != h.driver {
		t.Fatalf("PV %s is not a CSI volume of %s: %+v", pv.Name, h.driver, pv.Spec.PersistentVolumeSource)
	}
	if !slices.Equal(pv.Spec.AccessModes, []v1.PersistentVolumeAccessMode{mode}) {
		t.Errorf("accessModes %v, want [%s]", pv.Spec.AccessModes, mode)
	}
	if got := pv.Spec.CSI.ReadOnly; got != (mode == v1.ReadOnlyMany) {
		t.Errorf("spec.csi.readOnly = %v for %s", got, mode)
	}
	if pv.Spec.StorageClassName != sc.Name {
		t.Errorf("storageClassName %q, want %q", pv.Spec.StorageClassName, sc.Name)
	}
	if !slices.Equal(pv.Spec.MountOptions, sc.MountOptions) {
		t.Errorf("mountOptions %v, want %v", pv.Spec.MountOptions, sc.MountOptions)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != *sc.ReclaimPolicy {
		t.Errorf("reclaim policy %s, want %s", pv.Spec.PersistentVolumeReclaimPolicy, *sc.ReclaimPolicy)
	}
	if q := pv.Spec.Capacity[v1.ResourceStorage]; q.Value() < 64<<20 {
		t.Errorf("capacity %s, less than the 64Mi asked for", q.String())
	}
	if pv.Spec.CSI.VolumeAttributes["backend"] != b.name {
		t.Errorf("volumeAttributes %v, want backend=%s (the driver's volume context)", pv.Spec.CSI.VolumeAttributes, b.name)
	}
	affinity := pv.Spec.NodeAffinity
	if b.node == "" && affinity != nil {
		t.Errorf("NFS PV has nodeAffinity %+v", affinity)
	}
	if b.node != "" {
		if affinity == nil || affinity.Required == nil || len(affinity.Required.NodeSelectorTerms) != 1 {
			t.Fatalf("local PV nodeAffinity %+v, want one term for node %s", affinity, b.node)
		}
		e := affinity.Required.NodeSelectorTerms[0].MatchExpressions
		if len(e) != 1 || e[0].Key != nodeTopo || !slices.Equal(e[0].Values, []string{b.node}) {
			t.Errorf("local PV nodeAffinity %+v, want %s=%s", e, nodeTopo, b.node)
		}
	}
	if fi, err := os.Stat(h.volumeDir(pv)); err != nil || !fi.IsDir() {
		t.Errorf("volume directory %s: %v", h.volumeDir(pv), err)
	}
}

// TestLocalImmediateBinding: a local class with Immediate binding never
// gets a node, so the controller explains the fix.
func TestLocalImmediateBinding(t *testing.T) {
	h := newHarness(t)
	h.controller("controller", false)
	sc := h.class("local-now", map[string]string{"backend": "local"}, storagev1.VolumeBindingImmediate)
	h.claim("data", sc, "", "64Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce})
	h.WaitEvent("PersistentVolumeClaim", "data", "ProvisioningFailed", "volumeBindingMode", "WaitForFirstConsumer")
	if pvs := h.pvsOfDriver(); len(pvs) != 0 {
		t.Errorf("%d PVs were made for a claim that was refused", len(pvs))
	}
}
