package snapshotter

import (
	"reflect"
	"slices"
	"testing"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/labels"
)

func labelsEverything() labels.Selector { return labels.Everything() }

// cut is a dynamic content whose snapshot is ready.
func cut(name string, policy crdv1.DeletionPolicy) *crdv1.VolumeSnapshotContent {
	c := dynamic(name)
	c.Spec.DeletionPolicy = policy
	id, ready := idOf(testName), true
	c.Status = &crdv1.VolumeSnapshotContentStatus{SnapshotHandle: &id, ReadyToUse: &ready}
	return c
}

func TestDelete(t *testing.T) {
	pre := deleting(preProvisioned("pre-unbound", "snapshot#nfs#10.0.0.5#/export#old"), false)
	pre.Spec.VolumeSnapshotRef.UID = ""
	pre.Spec.DeletionPolicy = crdv1.VolumeSnapshotContentDelete
	pre.Finalizers = []string{Finalizer}
	for _, tc := range []struct {
		name     string
		content  *crdv1.VolumeSnapshotContent
		deleted  []string // snapshots the driver is asked to delete
		released bool     // our finalizer removed
	}{
		{"delete policy", deleting(cut("c", crdv1.VolumeSnapshotContentDelete), true), []string{idOf(testName)}, true},
		{"retain policy", deleting(cut("c", crdv1.VolumeSnapshotContentRetain), true), nil, true},
		{"not let go yet", deleting(cut("c", crdv1.VolumeSnapshotContentDelete), false), nil, false},
		{"unbound pre-provisioned", pre, []string{"snapshot#nfs#10.0.0.5#/export#old"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.content.Finalizers = append(tc.content.Finalizers, "example.com/other")
			w := newWorld(t, Config{}, tc.content)
			if _, err := w.step(tc.content.Name); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(w.csi.deleted, tc.deleted) {
				t.Errorf("driver deleted %v, want %v", w.csi.deleted, tc.deleted)
			}
			c := w.get(tc.content.Name)
			if released := !slices.Contains(c.Finalizers, Finalizer); released != tc.released {
				t.Errorf("finalizers %v; released = %v, want %v", c.Finalizers, released, tc.released)
			}
			if !slices.Contains(c.Finalizers, "example.com/other") {
				t.Errorf("finalizers %v: another controller's finalizer was removed", c.Finalizers)
			}
			if n := w.csi.createCalls(); n != 0 {
				t.Errorf("CreateSnapshot called %d times for a content on its way out", n)
			}
		})
	}
}

// A failed delete keeps the finalizer, tells the user, and is retried.
func TestDeleteFailureKeepsContent(t *testing.T) {
	w := newWorld(t, Config{}, deleting(cut("c", crdv1.VolumeSnapshotContentDelete), true))
	w.csi.errs = []error{status.Error(codes.FailedPrecondition, "snapshot directory belongs to another snapshot")}
	if _, err := w.step("c"); err == nil {
		t.Fatal("sync succeeded; want the driver's error")
	}
	if c := w.get("c"); !slices.Contains(c.Finalizers, Finalizer) {
		t.Error("the finalizer was removed although the snapshot was not deleted")
	}
	if ev := w.drained(); !hasEvent(ev, reasonDeleteFailed, "belongs to another snapshot") {
		t.Errorf("events %q; want %s with the driver's message", ev, reasonDeleteFailed)
	}
	if _, err := w.step("c"); err != nil {
		t.Fatal(err)
	}
	if c := w.get("c"); slices.Contains(c.Finalizers, Finalizer) {
		t.Error("the finalizer is still there after the retried delete succeeded")
	}
}

// A content deleted while its first CreateSnapshot is unanswered waits for
// the answer, so that the snapshot the driver may have cut gets a name and
// is deleted, not leaked.
func TestDeleteWaitsForUnansweredCreate(t *testing.T) {
	c := deleting(dynamic("c"), true)
	c.Annotations[AnnBeingCreated] = "yes"
	w := newWorld(t, Config{}, c)
	if _, err := w.step("c"); err != nil {
		t.Fatal(err)
	}
	if n := w.csi.createCalls(); n != 1 {
		t.Fatalf("CreateSnapshot called %d times, want 1 (to learn the answer)", n)
	}
	if len(w.csi.deleted) != 0 {
		t.Fatal("deleted before the create was answered")
	}
	if _, err := w.step("c"); err != nil {
		t.Fatal(err)
	}
	if want := []string{idOf(testName)}; !reflect.DeepEqual(w.csi.deleted, want) {
		t.Errorf("driver deleted %v, want %v", w.csi.deleted, want)
	}
	if c := w.get("c"); slices.Contains(c.Finalizers, Finalizer) {
		t.Error("finalizer kept after the snapshot was deleted")
	}
}
