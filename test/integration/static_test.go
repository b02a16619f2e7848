package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// staticPV creates what an admin writes by hand: a PV of this driver for an
// existing directory dir (relative to the share or base path) of backend b,
// in a class of its own so that only the test's claims match it.
func (h *harness) staticPV(b backend, dir string, policy v1.PersistentVolumeReclaimPolicy) *v1.PersistentVolume {
	h.t.Helper()
	id := volumeid.ID{Backend: volumeid.Local, Node: b.node, Dir: dir}
	mode := v1.ReadWriteOnce
	if b.node == "" {
		n := needNFS(h.t)
		id = volumeid.ID{Backend: volumeid.NFS, Server: n.server, Share: n.share, Dir: dir}
		mode = v1.ReadWriteMany
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: h.id + "-" + strings.ReplaceAll(dir, "/", "-")},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{mode},
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              h.staticClass(dir),
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: h.driver, VolumeHandle: id.String(),
			}},
		},
	}
	if b.node != "" {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: nodeTopo, Operator: v1.NodeSelectorOpIn, Values: []string{b.node}}},
		}}}}
	}
	if _, err := h.c.CoreV1().PersistentVolumes().Create(h.ctx, pv, metav1.CreateOptions{}); err != nil {
		h.t.Fatalf("create static PV: %v", err)
	}
	// Once the PV controller has seen the PV, a new claim finds it at once
	// instead of at the controller's next periodic sync.
	return h.WaitPVPhase(pv.Name, v1.VolumeAvailable)
}

// staticClass is a class name no StorageClass object has: Kubernetes then
// binds claims to matching PVs and provisions nothing.
func (h *harness) staticClass(dir string) string {
	return h.id + "-static-" + strings.ReplaceAll(dir, "/", "-")
}

// staticClaim claims the static PV made for dir.
func (h *harness) staticClaim(b backend, name, dir string) {
	h.t.Helper()
	mode := v1.ReadWriteOnce
	if b.node == "" {
		mode = v1.ReadWriteMany
	}
	h.claim(name, nil, "", "1Gi", []v1.PersistentVolumeAccessMode{mode}, func(c *v1.PersistentVolumeClaim) {
		class := h.staticClass(dir)
		c.Spec.StorageClassName = &class
	})
}

// backendRoot is the directory behind the share or the node's base path.
func (h *harness) backendRoot(b backend) string {
	if b.node == "" {
		return needNFS(h.t).dir
	}
	return h.bases[b.node]
}

// TestStaticPV: PVs an admin made for existing directories bind to matching
// claims through Kubernetes' own PV controller, and get the same reclaim
// handling as provisioned ones.
func TestStaticPV(t *testing.T) {
	h := newHarness(t)
	for _, b := range h.backends() {
		// The existing data, as an admin would have it.
		prefix := h.id + "-" + b.name
		if b.node == "" {
			prefix = h.id + "/" + b.name // under the test's own NFS directory
		}
		for _, policy := range []v1.PersistentVolumeReclaimPolicy{
			v1.PersistentVolumeReclaimRetain, v1.PersistentVolumeReclaimRecycle, v1.PersistentVolumeReclaimDelete,
		} {
			t.Run(b.name+"-"+strings.ToLower(string(policy)), func(t *testing.T) {
				h := h.sub(t)
				rel := prefix + "-" + strings.ToLower(string(policy))
				dir := filepath.Join(h.backendRoot(b), rel)
				writeTree(t, dir, sample)
				pv := h.staticPV(b, rel, policy)
				claim := b.name + "-" + strings.ToLower(string(policy))
				h.staticClaim(b, claim, rel)
				if got := h.WaitBound(claim); got.Name != pv.Name {
					t.Fatalf("claim bound to %s, want the static PV %s", got.Name, pv.Name)
				}
				h.DeleteClaim(claim)
				switch policy {
				case v1.PersistentVolumeReclaimRetain:
					h.WaitPVPhase(pv.Name, v1.VolumeReleased)
					if got := readTree(t, dir); !sameTree(got, sample) {
						t.Errorf("retained static volume holds %v, want %v", got, sample)
					}
				case v1.PersistentVolumeReclaimRecycle:
					h.WaitPVPhase(pv.Name, v1.VolumeAvailable)
					if got := readTree(t, dir); got == nil || len(got) != 0 {
						t.Errorf("recycled static volume holds %v, want an empty directory", got)
					}
					h.staticClaim(b, claim+"-again", rel)
					if got := h.WaitBound(claim + "-again"); got.Name != pv.Name {
						t.Errorf("new claim bound to %s, want the recycled %s", got.Name, pv.Name)
					}
				case v1.PersistentVolumeReclaimDelete:
					h.WaitPVGone(pv.Name)
					if _, err := os.Lstat(dir); !os.IsNotExist(err) {
						t.Errorf("static volume directory %s still exists after Delete (%v)", dir, err)
					}
				}
			})
		}
	}
}

// TestRecycleChecksClaimUID: a new claim with the old claim's name does not
// stop the recycle of the volume the old claim released: it is a different
// claim (another UID). The recycler is down while the name is reused, so it
// must tell the two apart when it comes back.
func TestRecycleChecksClaimUID(t *testing.T) {
	h := newHarness(t)
	for i, b := range h.backends() {
		t.Run(b.name, func(t *testing.T) {
			h := h.sub(t)
			rel := h.id + "-reuse-" + b.name
			if b.node == "" {
				rel = h.id + "/reuse"
			}
			dir := filepath.Join(h.backendRoot(b), rel)
			writeTree(t, dir, sample)
			pv := h.staticPV(b, rel, v1.PersistentVolumeReclaimRecycle)
			name := b.name + "-reuse"
			h.staticClaim(b, name, rel)
			h.WaitBound(name)

			recycler := h.procs[i] // the process that owns this backend
			recycler.stop()
			h.DeleteClaim(name)
			// Same name, another class: it must not bind the old PV.
			h.claim(name, nil, "", "1Gi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, func(c *v1.PersistentVolumeClaim) {
				other := h.id + "-nothing"
				c.Spec.StorageClassName = &other
			})
			recycler.restart()
			h.WaitPVPhase(pv.Name, v1.VolumeAvailable)
			if got := readTree(t, dir); got == nil || len(got) != 0 {
				t.Errorf("volume holds %v after the recycle, want an empty directory", got)
			}
			if pvc, err := h.GetClaim(name); err != nil || pvc.Status.Phase != v1.ClaimPending {
				t.Errorf("the new claim of the same name: %v, phase %v; want it Pending, untouched", err, pvc.Status.Phase)
			}
		})
	}
}
