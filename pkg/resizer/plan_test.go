package resizer

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const (
	inProg = v1.PersistentVolumeClaimControllerResizeInProgress
	infeas = v1.PersistentVolumeClaimControllerResizeInfeasible
)

// claimAt is a bound claim asking for request, holding capacity, with the
// resize status state (and allocated, if not "").
func claimAt(request, capacity string, state v1.ClaimResourceStatus, allocated string) *v1.PersistentVolumeClaim {
	pvc := &v1.PersistentVolumeClaim{
		Spec: v1.PersistentVolumeClaimSpec{
			VolumeName: "pv",
			Resources:  v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(request)}},
		},
		Status: v1.PersistentVolumeClaimStatus{
			Phase:    v1.ClaimBound,
			Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse(capacity)},
		},
	}
	if state != "" {
		pvc.Status.AllocatedResourceStatuses = map[v1.ResourceName]v1.ClaimResourceStatus{v1.ResourceStorage: state}
	}
	if allocated != "" {
		pvc.Status.AllocatedResources = v1.ResourceList{v1.ResourceStorage: resource.MustParse(allocated)}
	}
	return pvc
}

func pvOf(size string) *v1.PersistentVolume {
	return &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{
		Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)},
	}}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pvc        *v1.PersistentVolumeClaim
		pv         string
		want       step
		wantTarget string
	}{
		{"has what it asks for", claimAt("1Gi", "1Gi", "", ""), "1Gi", nothing, ""},
		{"asks for more", claimAt("2Gi", "1Gi", "", ""), "1Gi", expand, "2Gi"},
		{"retry of a resize in progress", claimAt("2Gi", "1Gi", inProg, "2Gi"), "1Gi", expand, "2Gi"},
		{"a lowered request after a failure that is retried", claimAt("2Gi", "1Gi", inProg, "3Gi"), "1Gi", expand, "2Gi"},
		{"a lowered request back at the capacity", claimAt("1Gi", "1Gi", inProg, "3Gi"), "1Gi", clear, "1Gi"},
		{"a larger request than the one in progress", claimAt("4Gi", "1Gi", inProg, "3Gi"), "1Gi", expand, "4Gi"},
		{"infeasible stays final", claimAt("1Pi", "1Gi", infeas, "1Pi"), "1Gi", nothing, "1Pi"},
		{"infeasible, then the user lowers the request", claimAt("2Gi", "1Gi", infeas, "1Pi"), "1Gi", expand, "2Gi"},
		{"infeasible, then the user goes back to the capacity", claimAt("1Gi", "1Gi", infeas, "1Pi"), "1Gi", clear, "1Gi"},
		{"restart after the PV was updated", claimAt("2Gi", "1Gi", inProg, "2Gi"), "2Gi", finish, "2Gi"},
		{"PV larger than asked", claimAt("2Gi", "1Gi", "", ""), "5Gi", finish, "5Gi"},
		{"kubelet's node states are not ours", claimAt("1Gi", "1Gi", v1.PersistentVolumeClaimNodeResizePending, "1Gi"), "1Gi", nothing, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.pvc, pvOf(tc.pv))
			if got.step != tc.want {
				t.Fatalf("step %v (%s), want %v", got.step, got.why, tc.want)
			}
			if tc.wantTarget != "" && got.target.Cmp(resource.MustParse(tc.wantTarget)) != 0 {
				t.Errorf("target %s, want %s", got.target.String(), tc.wantTarget)
			}
		})
	}
}

func TestWantsAttention(t *testing.T) {
	pending := claimAt("2Gi", "1Gi", "", "")
	pending.Status.Phase = v1.ClaimPending
	for _, tc := range []struct {
		name string
		pvc  *v1.PersistentVolumeClaim
		want bool
	}{
		{"settled", claimAt("1Gi", "1Gi", "", ""), false},
		{"grown", claimAt("2Gi", "1Gi", "", ""), true},
		{"not bound", pending, false},
		{"our stale status", claimAt("1Gi", "1Gi", infeas, "1Pi"), true},
	} {
		if got := wantsAttention(tc.pvc); got != tc.want {
			t.Errorf("%s: wantsAttention = %v, want %v", tc.name, got, tc.want)
		}
	}
}
