package main

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

func TestOwnsVolume(t *testing.T) {
	pv := func(handle string) *v1.PersistentVolume {
		return &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			CSI: &v1.CSIPersistentVolumeSource{VolumeHandle: handle}}}}
	}
	for _, tc := range []struct {
		handle           string
		node, controller bool
	}{
		{"local#n1#pvc-1#pvc-1#delete", true, false},
		{"local#n2#pvc-1#pvc-1#delete", false, false},
		{"nfs#10.0.0.5#/export#pvc-1#pvc-1#delete", false, true},
		{"garbage", false, true},
	} {
		if got := ownsVolume(modeNode, "n1")(pv(tc.handle)); got != tc.node {
			t.Errorf("node n1 owns %s: %v, want %v", tc.handle, got, tc.node)
		}
		if got := ownsVolume(modeController, "")(pv(tc.handle)); got != tc.controller {
			t.Errorf("controller owns %s: %v, want %v", tc.handle, got, tc.controller)
		}
	}
	if ownsVolume(modeController, "")(&v1.PersistentVolume{}) {
		t.Error("a PV without a CSI source is owned")
	}
}
