package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const libFinalizer = "external-provisioner.volume.kubernetes.io/finalizer"

// bindWithData provisions a claim on b, writes sample data into its volume
// and returns the PV and the volume's directory.
func bindWithData(h *harness, b backend, claim string, sc *storagev1.StorageClass) (*v1.PersistentVolume, string) {
	h.t.Helper()
	h.claimOn(b, claim, sc)
	pv := h.WaitBound(claim)
	dir := h.volumeDir(pv)
	writeTree(h.t, dir, sample)
	return pv, dir
}

// TestReclaimDelete: claim → Bound → claim deleted → the PV object and the
// backend directory are gone (or archived/kept, as the class's onDelete says).
func TestReclaimDelete(t *testing.T) {
	h := newHarness(t)
	for _, b := range h.backends() {
		t.Run(b.name, func(t *testing.T) {
			h := h.sub(t)
			pv, dir := bindWithData(h, b, b.name+"-data", b.class("delete", nil))
			h.Eventually("the provisioner's finalizer on "+pv.Name, func(context.Context) (bool, error) {
				pv, err := h.GetPV(pv.Name)
				if err != nil {
					return false, err
				}
				return slices.Contains(pv.Finalizers, libFinalizer), fmt.Errorf("finalizers %v", pv.Finalizers)
			})
			h.DeleteClaim(b.name + "-data")
			h.WaitPVGone(pv.Name)
			if _, err := os.Lstat(dir); !os.IsNotExist(err) {
				t.Errorf("volume directory %s still exists after Delete (%v)", dir, err)
			}
			h.expectNoVolumes(b)
		})
	}
	if env.nfs == nil {
		return
	}
	b := h.backends()[0]
	t.Run("nfs onDelete=archive", func(t *testing.T) {
		h := h.sub(t)
		pv, dir := bindWithData(h, b, "archived", b.class("archive", map[string]string{"onDelete": "archive"}))
		h.DeleteClaim("archived")
		h.WaitPVGone(pv.Name)
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("volume directory %s still exists after archiving (%v)", dir, err)
		}
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "archived-*-"+filepath.Base(dir)))
		if len(matches) != 1 {
			t.Fatalf("archived copies of %s: %v, want one", dir, matches)
		}
		if got := readTree(t, matches[0]); !sameTree(got, sample) {
			t.Errorf("archive %s holds %v, want the volume's data %v", matches[0], got, sample)
		}
	})
	t.Run("nfs onDelete=retain", func(t *testing.T) {
		h := h.sub(t)
		pv, dir := bindWithData(h, b, "kept", b.class("keep", map[string]string{"onDelete": "retain"}))
		h.DeleteClaim("kept")
		h.WaitPVGone(pv.Name)
		if got := readTree(t, dir); !sameTree(got, sample) {
			t.Errorf("kept directory %s holds %v, want %v", dir, got, sample)
		}
	})
}

// TestReclaimRetain: the claim goes, the PV stays Released and the data
// stays byte for byte; the README's manual reclaim (delete the PV) leaves
// the data in place for the admin.
func TestReclaimRetain(t *testing.T) {
	h := newHarness(t)
	retain := v1.PersistentVolumeReclaimRetain
	for _, b := range h.backends() {
		t.Run(b.name, func(t *testing.T) {
			h := h.sub(t)
			sc := b.class("retain", nil, func(sc *storagev1.StorageClass) { sc.ReclaimPolicy = &retain })
			pv, dir := bindWithData(h, b, b.name+"-data", sc)
			h.DeleteClaim(b.name + "-data")
			released := h.WaitPVPhase(pv.Name, v1.VolumeReleased)
			if slices.Contains(released.Finalizers, libFinalizer) {
				t.Errorf("a Retain PV carries the deletion finalizer %s", libFinalizer)
			}
			if got := readTree(t, dir); !sameTree(got, sample) {
				t.Errorf("retained volume %s holds %v, want %v", dir, got, sample)
			}
			// Manual reclaim, step 1: the admin deletes the PV object.
			if err := h.c.CoreV1().PersistentVolumes().Delete(h.ctx, pv.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			h.WaitPVGone(pv.Name)
			if got := readTree(t, dir); !sameTree(got, sample) {
				t.Errorf("after the PV was deleted, %s holds %v, want the data kept %v", dir, got, sample)
			}
		})
	}
}

// TestReclaimRecycle: the claim goes, the volume is scrubbed (the directory
// stays, empty), the PV becomes Available, and a new claim binds the same PV.
func TestReclaimRecycle(t *testing.T) {
	h := newHarness(t)
	for _, b := range h.backends() {
		t.Run(b.name, func(t *testing.T) {
			h := h.sub(t)
			sc := b.class("recycle", map[string]string{"reclaimPolicy": "Recycle"})
			pv, dir := bindWithData(h, b, b.name+"-first", sc)
			if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRecycle {
				t.Fatalf("PV policy %s, want Recycle from the class parameter", pv.Spec.PersistentVolumeReclaimPolicy)
			}
			h.DeleteClaim(b.name + "-first")
			available := h.WaitPVPhase(pv.Name, v1.VolumeAvailable)
			if available.Spec.ClaimRef != nil {
				t.Errorf("recycled PV still has claimRef %+v", available.Spec.ClaimRef)
			}
			if _, ok := available.Annotations["stowage.io/recycling-claim-uid"]; ok {
				t.Errorf("recycled PV still carries the recycling annotation")
			}
			if got := readTree(t, dir); got == nil || len(got) != 0 {
				t.Errorf("recycled volume %s holds %v, want an empty directory", dir, got)
			}
			h.WaitEvent("PersistentVolume", pv.Name, "RecycleStarted")
			h.WaitEvent("PersistentVolume", pv.Name, "VolumeRecycled")

			// The next claim gets the same PV. A local class waits for the
			// first consumer, so the claim names the PV as the scheduler
			// would have chosen it; the NFS class binds at once.
			if b.node == "" {
				h.claimOn(b, b.name+"-second", sc)
			} else {
				h.claim(b.name+"-second", sc, "", "64Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
					func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName = pv.Name })
			}
			again := h.WaitBound(b.name + "-second")
			if again.Name != pv.Name {
				t.Errorf("the new claim got PV %s, want the recycled %s", again.Name, pv.Name)
			}
		})
	}
}

// TestRecycleResumesAfterCrash: the recycler died mid-scrub, leaving the PV
// marked with the claim it was scrubbing away and part of the data still
// there. Restarted, it finishes the job. The state is set up by hand (what
// the recycler writes before it scrubs), so that the crash lands exactly
// there every time.
func TestRecycleResumesAfterCrash(t *testing.T) {
	h := newHarness(t)
	for i, b := range h.backends() {
		t.Run(b.name, func(t *testing.T) {
			h := h.sub(t)
			p := h.procs[i]
			pv, dir := bindWithData(h, b, b.name+"-data", b.class("resume", map[string]string{"reclaimPolicy": "Recycle"}))
			p.kill()
			h.DeleteClaim(b.name + "-data")
			released := h.WaitPVPhase(pv.Name, v1.VolumeFailed) // "No recycler plugin found"
			released.Annotations["stowage.io/recycling-claim-uid"] = string(released.Spec.ClaimRef.UID)
			if _, err := h.c.CoreV1().PersistentVolumes().Update(h.ctx, released, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, "index.html")); err != nil { // scrubbed before the crash
				t.Fatal(err)
			}
			p.restart()
			h.WaitPVPhase(pv.Name, v1.VolumeAvailable)
			h.WaitEvent("PersistentVolume", pv.Name, "RecycleStarted", "Resuming")
			if got := readTree(t, dir); got == nil || len(got) != 0 {
				t.Errorf("volume %s holds %v after the resumed recycle, want an empty directory", dir, got)
			}
		})
	}
}
