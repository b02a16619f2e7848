package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
)

// orphanController starts `stowage controller` as h.controller does, with
// the orphan reconciler looking every second and calling a volume an orphan
// one second after it was made; extra flags are added.
func (h *harness) orphanController(name string, extra ...string) *proc {
	h.t.Helper()
	args := []string{"controller",
		"--kubeconfig=" + env.kubeconfig, "--driver-name=" + h.driver,
		"--endpoint=unix://" + filepath.Join(h.sockDir(), "csi.sock"),
		"--provisioner=true", "--leader-elect=false",
		"--orphans-interval=1s", "--orphans-grace=1s"}
	return h.track(startProc(h.t, h.logDir, name, []string{"POD_NAME=" + name, "POD_NAMESPACE=" + h.ns}, append(args, extra...)...))
}

// recordPath is where the NFS backend keeps the record of dir (the driver's
// record naming, repeated here so that the test sees the file itself).
func recordPath(nfsDir, dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(nfsDir, ".stowage", "vol-"+hex.EncodeToString(sum[:16])+".json")
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestOrphans makes the leak the reconciler is for (a volume created
// through CreateVolume whose PV never came: the provisioner killed after the
// call, its claim deleted before it restarted) beside a Bound volume and a
// retained one. Report-only, the orphan gets an event on its class and is
// counted by stowage_orphaned_volumes while its directory stays; with
// --orphans-remove-after it is removed and the other two are left alone.
func TestOrphans(t *testing.T) {
	h := newHarness(t)
	n := needNFS(t)
	ctrl := h.orphanController("controller")
	sc := h.nfsClass("main", nil)
	keep := h.nfsClass("keep", map[string]string{"onDelete": "retain"})

	h.claim("bound", sc, "", "64Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteMany})
	bound := h.WaitBound("bound")
	boundDir := h.volumeDir(bound)
	h.claim("kept", keep, "", "64Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteMany})
	kept := h.WaitBound("kept")
	keptDir := h.volumeDir(kept)
	h.DeleteClaim("kept")
	h.WaitPVGone(kept.Name)

	// What the provisioner sends for a claim, as if it was killed right
	// after the call and the claim was deleted meanwhile.
	orphan := "pvc-" + h.id + "-orphan"
	params := map[string]string{
		"csi.storage.k8s.io/pv/name": orphan, "csi.storage.k8s.io/pvc/name": "gone", "csi.storage.k8s.io/pvc/namespace": h.ns,
	}
	for k, v := range sc.Parameters {
		params[k] = v
	}
	resp, err := csi.NewControllerClient(dial(t, ctrl)).CreateVolume(h.ctx, &csi.CreateVolumeRequest{
		Name: orphan, Parameters: params, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20},
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
		}},
	})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	orphanPV := &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
		CSI: &v1.CSIPersistentVolumeSource{VolumeHandle: resp.Volume.VolumeId}}}}
	orphanDir := h.volumeDir(orphanPV)
	relDir, _ := filepath.Rel(n.dir, orphanDir)
	if !exists(orphanDir) {
		t.Fatalf("CreateVolume made no directory %s", orphanDir)
	}

	series := fmt.Sprintf(`stowage_orphaned_volumes{root=%q}`, n.server+":"+n.share)
	h.WaitEvent("StorageClass", sc.Name, "OrphanedVolume", orphan, relDir, "reported only")
	waitMetric(t, ctrl, series, 1)
	if !exists(orphanDir) {
		t.Fatalf("the orphan's directory %s was removed although removal is off", orphanDir)
	}
	for _, e := range h.Events("StorageClass", keep.Name) {
		if strings.HasPrefix(e, "OrphanedVolume") {
			t.Errorf("the retained volume was reported: %s", e)
		}
	}

	ctrl.stop()
	remover := h.orphanController("remover", "--orphans-remove-after=1s")
	h.WaitEvent("StorageClass", sc.Name, "OrphanedVolumeRemoved", orphan, relDir)
	waitMetric(t, remover, series, 0)
	if exists(orphanDir) || exists(recordPath(n.dir, relDir)) {
		t.Errorf("the orphan's directory %s or its record is still there after its removal", orphanDir)
	}
	keptRel, _ := filepath.Rel(n.dir, keptDir)
	if !exists(keptDir) || !exists(recordPath(n.dir, keptRel)) {
		t.Errorf("the retained volume's directory %s or its record is gone", keptDir)
	}
	if !exists(boundDir) {
		t.Errorf("the bound volume's directory %s is gone", boundDir)
	}
	if pv, err := h.GetPV(bound.Name); err != nil || pv.Status.Phase != v1.VolumeBound {
		t.Errorf("PV %s after the removal: %v, %v", bound.Name, pv, err)
	}
}
