package provisioner

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func csiPV(name, handle string, phase v1.PersistentVolumePhase) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			CSI: &v1.CSIPersistentVolumeSource{Driver: "csi.stowage.io", VolumeHandle: handle}}},
		Status: v1.PersistentVolumeStatus{Phase: phase},
	}
}

func TestUsedBy(t *testing.T) {
	me := csiPV("me", "nfs#s#/export#team/data#me#delete", v1.VolumeReleased)
	tests := []struct {
		other *v1.PersistentVolume
		want  bool
	}{
		{csiPV("same", "nfs#s#/export#team/data", v1.VolumeBound), true},
		{csiPV("inside", "nfs#s#/export#team/data/sub", v1.VolumeBound), true},
		{csiPV("around", "nfs#s#/export#team", v1.VolumeAvailable), true},
		{csiPV("share-nests", "nfs#s#/export/team#data", v1.VolumeBound), true},
		{csiPV("released", "nfs#s#/export#team/data", v1.VolumeReleased), false},
		{csiPV("sibling", "nfs#s#/export#team/data2", v1.VolumeBound), false},
		{csiPV("other-server", "nfs#t#/export#team/data", v1.VolumeBound), false},
		{csiPV("local", "local#n#team", v1.VolumeBound), false},
	}
	for _, tt := range tests {
		got := usedBy([]*v1.PersistentVolume{me, tt.other}, "csi.stowage.io", me) != nil
		if got != tt.want {
			t.Errorf("%s (%s): used = %v, want %v", tt.other.Name, tt.other.Spec.CSI.VolumeHandle, got, tt.want)
		}
	}
	otherDriver := csiPV("x", "nfs#s#/export#team/data", v1.VolumeBound)
	otherDriver.Spec.CSI.Driver = "other"
	if usedBy([]*v1.PersistentVolume{otherDriver}, "csi.stowage.io", me) != nil {
		t.Error("a PV of another driver counted")
	}
}
