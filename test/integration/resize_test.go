package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/stowage-csi/stowage/pkg/backend/local"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

const gi = int64(1) << 30

func expandable(sc *storagev1.StorageClass) {
	yes := true
	sc.AllowVolumeExpansion = &yes
}

// TestResizeNFS grows NFS claims through the controller's in-process
// resizer, as a user does with `kubectl patch pvc`: the PV and the claim end
// with the new size and the events external-resizer would have written; a
// failure is reported with the driver's message, retried or final by its
// kind (a final one is in TestResizeLocal); a resize interrupted by a crash
// is finished after the restart.
func TestResizeNFS(t *testing.T) {
	h := newHarness(t)
	needNFS(t)
	ctrl := h.controller("controller", false)
	sc := h.nfsClass("grow", nil, expandable)
	rwx := []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}
	names := []string{"grow", "too-much", "crash"}
	for _, n := range names {
		h.claim(n, sc, "", "1Gi", rwx)
	}
	pvs := map[string]*v1.PersistentVolume{}
	for _, n := range names {
		pvs[n] = h.WaitBound(n)
	}

	t.Run("grows 1Gi to 2Gi", func(t *testing.T) {
		h := h.sub(t)
		pv := pvs["grow"]
		h.request("grow", "2Gi")
		h.waitResized("grow", pv.Name, "2Gi")
		h.WaitEvent("PersistentVolumeClaim", "grow", "Resizing", pv.Name)
		h.WaitEvent("PersistentVolumeClaim", "grow", "VolumeResizeSuccessful", pv.Name, "2Gi")
		if got := driverSize(t, ctrl, pv); got != 2*gi {
			t.Errorf("the driver holds %d bytes for %s, want %d", got, pv.Name, 2*gi)
		}
	})

	t.Run("shrinking is refused by the API server", func(t *testing.T) {
		h := h.sub(t)
		err := h.setRequest("grow", "1Gi")
		if !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "less than") {
			t.Fatalf("lowering the request below the claim's capacity: %v, want the API server's refusal", err)
		}
		t.Logf("refused as expected: %v", err)
	})

	t.Run("more than the share has is retried until the user asks for less", func(t *testing.T) {
		h := h.sub(t)
		pv := pvs["too-much"]
		h.request("too-much", "1Pi")
		h.WaitEvent("PersistentVolumeClaim", "too-much", "VolumeResizeFailed", pv.Name, "available")
		pvc := h.waitResizeState("too-much", v1.PersistentVolumeClaimControllerResizeInProgress, "available")
		if got := pvc.Status.AllocatedResources[v1.ResourceStorage]; got.Cmp(resource.MustParse("1Pi")) != 0 {
			t.Errorf("allocatedResources %s while retrying, want 1Pi", got.String())
		}
		h.request("too-much", "3Gi")
		h.waitResized("too-much", pv.Name, "3Gi")
	})

	// State lives only in the API objects: a claim marked in progress by a
	// process that then died is finished by the next one.
	t.Run("a resize interrupted by a crash is finished after the restart", func(t *testing.T) {
		h := h.sub(t)
		pv := pvs["crash"]
		ctrl.kill()
		h.request("crash", "2Gi")
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			pvc, err := h.GetClaim("crash")
			if err != nil {
				return err
			}
			pvc.Status.AllocatedResources = v1.ResourceList{v1.ResourceStorage: resource.MustParse("2Gi")}
			pvc.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{
				v1.ResourceStorage: v1.PersistentVolumeClaimControllerResizeInProgress}
			pvc.Status.Conditions = append(pvc.Status.Conditions, v1.PersistentVolumeClaimCondition{
				Type: v1.PersistentVolumeClaimResizing, Status: v1.ConditionTrue, LastTransitionTime: metav1.Now()})
			_, err = h.c.CoreV1().PersistentVolumeClaims(h.ns).UpdateStatus(h.ctx, pvc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		ctrl.restart()
		h.waitResized("crash", pv.Name, "2Gi")
		if got := driverSize(t, ctrl, pv); got != 2*gi {
			t.Errorf("the driver holds %d bytes for %s, want %d", got, pv.Name, 2*gi)
		}
	})
}

// TestResizeLocal grows a local claim through the node plugin of its node,
// running with the token and rights it has in a cluster (the chart's RBAC
// and node admission policy): the resize of its own claim passes, the
// status of another node's claim is refused. A volume whose directory was
// removed behind the driver's back cannot grow: that failure is final
// (ControllerResizeInfeasible). It is a local case because an NFS server
// may answer from its cache that the directory is still there.
func TestResizeLocal(t *testing.T) {
	h := newHarness(t)
	sa := installChartRBAC(h)
	nodeA, nodeB := h.nodeName("a"), h.nodeName("b")
	h.createNode(nodeA)
	h.createNode(nodeB)
	asA, tokenA := h.clientAs(h.podBoundToken(sa, nodeA))
	h.waitNodePolicy(asA, nodeB)
	base := filepath.Join(h.logDir, "local-"+nodeA)
	h.bases[nodeA] = base
	node := h.track(startProc(t, h.logDir, "node-"+nodeA, []string{"NODE_NAME=" + nodeA}, "node",
		"--kubeconfig="+h.writeTokenKubeconfig(tokenA), "--driver-name="+h.driver, "--node-id="+nodeA,
		"--local-base-path="+base, "--kubelet-registration-dir=",
		"--endpoint=unix://"+filepath.Join(h.sockDir(), "csi.sock"), "--provisioner=true"))
	sc := h.localClass("grow", nil, expandable)
	rwo := []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	h.claim("grow", sc, nodeA, "1Gi", rwo)
	h.claim("gone", sc, nodeA, "1Gi", rwo)
	pv := h.WaitBound("grow")
	pvGone := h.WaitBound("gone")

	t.Run("grows 1Gi to 2Gi", func(t *testing.T) {
		h := h.sub(t)
		h.request("grow", "2Gi")
		h.waitResized("grow", pv.Name, "2Gi")
		h.WaitEvent("PersistentVolumeClaim", "grow", "Resizing", pv.Name)
		h.WaitEvent("PersistentVolumeClaim", "grow", "VolumeResizeSuccessful", pv.Name, "2Gi")
		if got := driverSize(t, node, pv); got != 2*gi {
			t.Errorf("the driver holds %d bytes for %s, want %d", got, pv.Name, 2*gi)
		}
		checkQuota(t, base, pv, 2*gi)
	})

	t.Run("a volume whose directory is gone is infeasible", func(t *testing.T) {
		h := h.sub(t)
		pv := pvGone
		if err := os.RemoveAll(h.volumeDir(pv)); err != nil {
			t.Fatal(err)
		}
		h.request("gone", "2Gi")
		h.WaitEvent("PersistentVolumeClaim", "gone", "VolumeResizeFailed", pv.Name, "does not exist")
		h.waitResizeState("gone", v1.PersistentVolumeClaimControllerResizeInfeasible, "does not exist")
		if got, _ := h.GetPV(pv.Name); got.Spec.Capacity.Storage().Cmp(resource.MustParse("1Gi")) != 0 {
			t.Errorf("PV %s has %s after a failed resize, want 1Gi", pv.Name, got.Spec.Capacity.Storage())
		}
	})

	t.Run("the node plugin may not write another node's claim status", func(t *testing.T) {
		claimB := h.adminClaim("claim-b", nodeB)
		_, err := asA.CoreV1().PersistentVolumeClaims(h.ns).Patch(h.ctx, claimB, types.MergePatchType,
			[]byte(`{"status":{"allocatedResources":{"storage":"5Gi"}}}`), metav1.PatchOptions{}, "status")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "is selected for node "+nodeB) {
			t.Fatalf("patching the status of a claim of node %s as node %s: %v, want the admission policy's refusal", nodeB, nodeA, err)
		}
		t.Logf("refused as expected: %v", err)
	})
}

// checkQuota checks the volume's project quota where the base path's
// filesystem has project quotas; elsewhere the driver's record is what
// grows, and driverSize has checked it.
func checkQuota(t *testing.T, base string, pv *v1.PersistentVolume, want int64) {
	t.Helper()
	store, err := local.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	q, err := local.NewQuota(store)
	if err != nil {
		t.Logf("no project quotas under %s, so only the record grows: %v", base, err)
		return
	}
	id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
	if err != nil {
		t.Fatal(err)
	}
	u, err := q.Measure(context.Background(), id.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.Limit != want {
		t.Errorf("project quota of %s is %d bytes, want %d", id.Dir, u.Limit, want)
	}
}

// setRequest sets a claim's storage request, as `kubectl patch pvc` would.
func (h *harness) setRequest(claim, size string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pvc, err := h.GetClaim(claim)
		if err != nil {
			return err
		}
		pvc.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse(size)
		_, err = h.c.CoreV1().PersistentVolumeClaims(h.ns).Update(h.ctx, pvc, metav1.UpdateOptions{})
		return err
	})
}

func (h *harness) request(claim, size string) {
	h.t.Helper()
	if err := h.setRequest(claim, size); err != nil {
		h.t.Fatalf("request %s for claim %s: %v", size, claim, err)
	}
}

// waitResized waits until the claim and its PV have size and the claim
// carries no resize status or condition.
func (h *harness) waitResized(claim, pvName, size string) {
	h.t.Helper()
	want := resource.MustParse(size)
	h.Eventually(fmt.Sprintf("claim %s and PV %s at %s", claim, pvName, size), func(context.Context) (bool, error) {
		pvc, err := h.GetClaim(claim)
		if err != nil {
			return false, err
		}
		pv, err := h.GetPV(pvName)
		if err != nil {
			return false, err
		}
		state := fmt.Errorf("claim capacity %s, status %v, conditions %v; PV capacity %s; events: %s",
			pvc.Status.Capacity.Storage(), pvc.Status.AllocatedResourceStatuses, pvc.Status.Conditions,
			pv.Spec.Capacity.Storage(), h.EventsOf("PersistentVolumeClaim", claim))
		return pvc.Status.Capacity.Storage().Cmp(want) == 0 && pv.Spec.Capacity.Storage().Cmp(want) == 0 &&
			len(pvc.Status.AllocatedResourceStatuses) == 0 && len(pvc.Status.Conditions) == 0, state
	})
}

// waitResizeState waits until the claim's resize status is state with a
// ControllerResizeError condition whose message contains msg.
func (h *harness) waitResizeState(claim string, state v1.ClaimResourceStatus, msg string) *v1.PersistentVolumeClaim {
	h.t.Helper()
	var pvc *v1.PersistentVolumeClaim
	h.Eventually(fmt.Sprintf("claim %s in %s with an error mentioning %q", claim, state, msg), func(context.Context) (bool, error) {
		var err error
		if pvc, err = h.GetClaim(claim); err != nil {
			return false, err
		}
		ok := pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage] == state
		found := false
		for _, c := range pvc.Status.Conditions {
			found = found || c.Type == v1.PersistentVolumeClaimControllerResizeError && strings.Contains(c.Message, msg)
		}
		return ok && found, fmt.Errorf("status %v, conditions %+v", pvc.Status.AllocatedResourceStatuses, pvc.Status.Conditions)
	})
	return pvc
}

// driverSize asks the stowage process p what size it holds for pv: an
// expand to one byte is answered with the volume's recorded size (volumes
// never shrink) and changes nothing.
func driverSize(t *testing.T, p *proc, pv *v1.PersistentVolume) int64 {
	t.Helper()
	var endpoint string
	for _, a := range p.args {
		if s, ok := strings.CutPrefix(a, "--endpoint="); ok {
			endpoint = s
		}
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := csi.NewControllerClient(conn).ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
		VolumeId: pv.Spec.CSI.VolumeHandle, CapacityRange: &csi.CapacityRange{RequiredBytes: 1},
	})
	if err != nil {
		t.Fatalf("ask %s for the size of %s: %v", p.name, pv.Name, err)
	}
	return resp.GetCapacityBytes()
}
