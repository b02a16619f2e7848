package nodeloss

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeGone(t *testing.T) {
	tainted := &v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{
		{Key: "node.kubernetes.io/unreachable", Effect: v1.TaintEffectNoExecute},
		{Key: v1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: v1.TaintEffectNoExecute},
	}}}
	notReady := &v1.Node{Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: "node.kubernetes.io/not-ready", Effect: v1.TaintEffectNoSchedule}}}}
	for _, tc := range []struct {
		name string
		node *v1.Node
		gone bool
	}{
		{"deleted", nil, true},
		{"out of service", tainted, true},
		{"not ready is not gone", notReady, false},
		{"healthy", &v1.Node{}, false},
	} {
		if gone, why := NodeGone(tc.node); gone != tc.gone || gone == (why == "") {
			t.Errorf("%s: NodeGone = %v, %q; want %v with a reason iff gone", tc.name, gone, why, tc.gone)
		}
	}
}

func TestLocalNode(t *testing.T) {
	pv := func(driver, handle string) *v1.PersistentVolume {
		return &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			CSI: &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: handle}}}}
	}
	for _, tc := range []struct {
		pv   *v1.PersistentVolume
		want string
	}{
		{pv("csi.stowage.io", "local#n1#pvc-1#pvc-1#delete"), "n1"},
		{pv("csi.stowage.io", "local#n1#data"), "n1"},
		{pv("other.csi.io", "local#n1#pvc-1#pvc-1#delete"), ""},
		{pv("csi.stowage.io", "nfs#10.0.0.5#/export#pvc-1#pvc-1#delete"), ""},
		{pv("csi.stowage.io", "garbage"), ""},
		{&v1.PersistentVolume{}, ""},
	} {
		if got := LocalNode("csi.stowage.io", tc.pv); got != tc.want {
			t.Errorf("LocalNode(%+v) = %q, want %q", tc.pv.Spec.CSI, got, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	hourAgo := now.Add(-time.Hour).Format(time.RFC3339)
	minuteAgo := now.Add(-time.Minute).Format(time.RFC3339)
	claim := &v1.ObjectReference{Namespace: "team", Name: "data", UID: "u1"}
	pv := func(phase v1.PersistentVolumePhase, ref *v1.ObjectReference, policy v1.PersistentVolumeReclaimPolicy, ann string) *v1.PersistentVolume {
		p := &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
			Spec:       v1.PersistentVolumeSpec{ClaimRef: ref, PersistentVolumeReclaimPolicy: policy},
			Status:     v1.PersistentVolumeStatus{Phase: phase},
		}
		if ann != "" {
			p.Annotations = map[string]string{AnnNodeGone: ann}
		}
		return p
	}
	const del, keep, recycle = v1.PersistentVolumeReclaimDelete, v1.PersistentVolumeReclaimRetain, v1.PersistentVolumeReclaimRecycle
	for _, tc := range []struct {
		name   string
		pv     *v1.PersistentVolume
		gone   bool
		after  time.Duration
		action Action
		inUse  bool
		at     string // WriteOffAt, RFC 3339, or "" for zero
	}{
		{"node here, nothing to say", pv(v1.VolumeReleased, claim, del, ""), false, time.Minute, Nothing, false, ""},
		{"node back: unmark", pv(v1.VolumeBound, claim, del, hourAgo), false, time.Minute, Unmark, true, ""},
		{"node back, bad annotation: unmark", pv(v1.VolumeBound, claim, del, "yesterday"), false, 0, Unmark, true, ""},
		{"gone, released: mark", pv(v1.VolumeReleased, claim, del, ""), true, time.Minute, Mark, false, ""},
		{"gone, bound: mark, in use", pv(v1.VolumeBound, claim, del, ""), true, time.Minute, Mark, true, ""},
		{"gone, bad annotation: mark again", pv(v1.VolumeReleased, claim, del, "yesterday"), true, time.Minute, Mark, false, ""},
		{"marked, released, old enough: write off", pv(v1.VolumeReleased, claim, del, hourAgo), true, time.Minute, WriteOff, false, now.Add(-59 * time.Minute).Format(time.RFC3339)},
		{"marked, failed, old enough: write off", pv(v1.VolumeFailed, claim, del, hourAgo), true, time.Minute, WriteOff, false, now.Add(-59 * time.Minute).Format(time.RFC3339)},
		{"marked, recycle, available: write off", pv(v1.VolumeAvailable, nil, recycle, hourAgo), true, time.Hour, WriteOff, false, now.Format(time.RFC3339)},
		{"marked, released, too young: wait", pv(v1.VolumeReleased, claim, del, minuteAgo), true, time.Hour, Nothing, false, now.Add(59 * time.Minute).Format(time.RFC3339)},
		{"marked, released, write-off off", pv(v1.VolumeReleased, claim, del, hourAgo), true, 0, Nothing, false, ""},
		{"marked, bound: never", pv(v1.VolumeBound, claim, del, hourAgo), true, time.Minute, Nothing, true, ""},
		{"marked, being bound: never", pv(v1.VolumeAvailable, claim, del, hourAgo), true, time.Minute, Nothing, true, ""},
		{"marked, pending: never", pv(v1.VolumePending, nil, del, hourAgo), true, time.Minute, Nothing, true, ""},
		{"marked, retain: the admin's call", pv(v1.VolumeReleased, claim, keep, hourAgo), true, time.Minute, Nothing, false, ""},
	} {
		d := Decide(tc.pv, tc.gone, now, tc.after)
		at := ""
		if !d.WriteOffAt.IsZero() {
			at = d.WriteOffAt.Format(time.RFC3339)
		}
		if d.Action != tc.action || d.InUse != tc.inUse || at != tc.at {
			t.Errorf("%s: got %s, in use %v, at %q; want %s, in use %v, at %q", tc.name, d.Action, d.InUse, at, tc.action, tc.inUse, tc.at)
		}
	}
}
