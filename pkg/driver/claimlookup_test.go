package driver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestClaimLookup(t *testing.T) {
	pv := func(name, handle, claim, uid string) *corev1.PersistentVolume {
		p := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}}
		p.Spec.CSI = &corev1.CSIPersistentVolumeSource{Driver: "csi.stowage.io", VolumeHandle: handle}
		if claim != "" {
			p.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", Name: claim, UID: k8stypes.UID("uid-" + uid)}
		}
		return p
	}
	pvc := func(name, uid string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: k8stypes.UID("uid-" + uid)},
			Spec:       corev1.PersistentVolumeClaimSpec{AccessModes: modes},
		}
	}
	objects := []runtime.Object{
		pv("pv-rox", nfsVolume, "readers", "1"),
		pvc("readers", "1", corev1.ReadOnlyMany),
		pv("pv-rwx", nfsVolume, "writers", "2"),
		pvc("writers", "2", corev1.ReadWriteMany, corev1.ReadOnlyMany),
		pv("pv-other", "nfs#server#/export#other", "readers", "1"),
		pv("pv-unbound", nfsVolume, "", ""),
		pv("pv-gone", nfsVolume, "gone", "3"),
		pv("pv-remade", nfsVolume, "remade", "4"),
		pvc("remade", "5", corev1.ReadOnlyMany),
		pv("pv-down", nfsVolume, "down", "6"),
	}
	client := fake.NewClientset(objects...)
	client.PrependReactor("get", "persistentvolumeclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() == "down" {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	lookup := ClaimLookup(client)
	tests := []struct {
		pv        string
		want      []string
		mismatch  bool
		wantError string
	}{
		{pv: "pv-rox", want: []string{"ReadOnlyMany"}},
		{pv: "pv-rwx", want: []string{"ReadWriteMany", "ReadOnlyMany"}},
		{pv: "pv-other", mismatch: true, wantError: "is not volume"},
		{pv: "pv-unbound", mismatch: true, wantError: "not bound"},
		{pv: "pv-gone", mismatch: true, wantError: "does not exist"},
		{pv: "pv-remade", mismatch: true, wantError: "has UID"},
		{pv: "pv-missing", mismatch: true, wantError: "does not exist"},
		{pv: "pv-down", wantError: "connection refused"},
	}
	for _, tt := range tests {
		got, err := lookup(context.Background(), tt.pv, nfsVolume)
		if tt.wantError == "" {
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("%s: %v, %v; want %v", tt.pv, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantError) || errors.Is(err, ErrNotTheClaim) != tt.mismatch {
			t.Errorf("%s: %v; want an error containing %q (ErrNotTheClaim %v)", tt.pv, err, tt.wantError, tt.mismatch)
		}
	}
}
