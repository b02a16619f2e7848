package reclaim

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const driver = "csi.stowage.io"

// releasedPV is a PV of our driver, policy Recycle, released by claim ns/data.
func releasedPV(mod func(*v1.PersistentVolume)) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-1", Annotations: map[string]string{}},
		Spec: v1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRecycle,
			PersistentVolumeSource: v1.PersistentVolumeSource{
				CSI: &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: "nfs#srv#/export#pv-1"},
			},
			ClaimRef: &v1.ObjectReference{Namespace: "ns", Name: "data", UID: "uid-old", ResourceVersion: "7"},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeReleased},
	}
	if mod != nil {
		mod(pv)
	}
	return pv
}

func TestWaitingReason(t *testing.T) {
	now := metav1.Now()
	tests := []struct {
		name string
		pv   *v1.PersistentVolume
		want string // substring; "" means the PV is due for recycling
	}{
		{"released", releasedPV(nil), ""},
		{"failed for lack of a recycler", releasedPV(func(pv *v1.PersistentVolume) {
			pv.Status = v1.PersistentVolumeStatus{Phase: v1.VolumeFailed, Message: "No recycler plugin found for the volume!"}
		}), ""},
		{"other driver", releasedPV(func(pv *v1.PersistentVolume) { pv.Spec.CSI.Driver = "other.csi" }), "not a volume of driver"},
		{"not CSI", releasedPV(func(pv *v1.PersistentVolume) {
			pv.Spec.CSI = nil
			pv.Spec.NFS = &v1.NFSVolumeSource{Server: "s", Path: "/p"}
		}), "not a volume of driver"},
		{"retain", releasedPV(func(pv *v1.PersistentVolume) {
			pv.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
		}), "Retain, not Recycle"},
		{"bound", releasedPV(func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeBound }), "phase is Bound"},
		{"available", releasedPV(func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeAvailable }), "phase is Available"},
		{"being deleted", releasedPV(func(pv *v1.PersistentVolume) { pv.DeletionTimestamp = &now }), "being deleted"},
		{"no claimRef", releasedPV(func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef = nil }), "no claimRef"},
		{"pre-bound, never bound", releasedPV(func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef.UID = "" }), "never bound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := waitingReason(tc.pv, driver)
			if tc.want == "" && got != "" {
				t.Fatalf("waitingReason = %q, want the PV to be due", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("waitingReason = %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

func TestClaimStillExists(t *testing.T) {
	ref := &v1.ObjectReference{Namespace: "ns", Name: "data", UID: "uid-old"}
	claim := func(uid types.UID) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: uid}}
	}
	tests := []struct {
		name  string
		claim *v1.PersistentVolumeClaim
		want  bool
	}{
		{"gone", nil, false},
		{"same claim", claim("uid-old"), true},
		{"new claim with the same name", claim("uid-new"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := claimStillExists(ref, tc.claim); got != tc.want {
				t.Fatalf("claimStillExists = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnbind(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		wantRef     *v1.ObjectReference
	}{
		{
			name:        "dynamically provisioned: claimRef cleared",
			annotations: map[string]string{annDynamicallyProvisioned: driver, AnnRecyclingClaim: "uid-old"},
			wantRef:     nil,
		},
		{
			name:        "bound by the PV controller: claimRef cleared",
			annotations: map[string]string{annBoundByController: "yes", AnnRecyclingClaim: "uid-old"},
			wantRef:     nil,
		},
		{
			name:        "pre-bound by an admin: kept for a claim of that name",
			annotations: map[string]string{AnnRecyclingClaim: "uid-old"},
			wantRef:     &v1.ObjectReference{Namespace: "ns", Name: "data"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pv := releasedPV(func(pv *v1.PersistentVolume) { pv.Annotations = tc.annotations })
			got := unbind(pv)
			if tc.wantRef == nil && got.Spec.ClaimRef != nil {
				t.Errorf("claimRef = %+v, want none", got.Spec.ClaimRef)
			}
			if tc.wantRef != nil && (got.Spec.ClaimRef == nil || *got.Spec.ClaimRef != *tc.wantRef) {
				t.Errorf("claimRef = %+v, want %+v", got.Spec.ClaimRef, tc.wantRef)
			}
			for _, a := range []string{AnnRecyclingClaim, annBoundByController} {
				if _, ok := got.Annotations[a]; ok {
					t.Errorf("annotation %s is still set", a)
				}
			}
			if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != "uid-old" {
				t.Errorf("unbind modified its input")
			}
		})
	}
}
