package kit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// failure records what a helper would have failed its test with, instead of failing ours.
type failure struct {
	testing.TB
	msg string
}

func (f *failure) Helper() {}
func (f *failure) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a Kube whose failures are recorded, and returns the failure message ("" if
// fn returned normally).
func run(t *testing.T, k Kube, fn func(k Kube)) string {
	f := &failure{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(k.For(f))
	}()
	<-done
	return f.msg
}

func kube(objs ...kruntime.Object) Kube {
	return Kube{Waiter: Waiter{Timeout: 300 * time.Millisecond, Poll: 10 * time.Millisecond}, Client: fake.NewClientset(objs...), NS: "team"}
}

func TestEventuallyReportsTheLastStateSeen(t *testing.T) {
	calls := 0
	msg := run(t, Kube{Waiter: Waiter{Timeout: 50 * time.Millisecond, Poll: 5 * time.Millisecond}}, func(k Kube) {
		k.Eventually("the answer", func(context.Context) (bool, error) {
			calls++
			return false, fmt.Errorf("answer %d", calls)
		})
	})
	if !strings.Contains(msg, "waiting for the answer") || !strings.Contains(msg, "last seen: answer ") {
		t.Errorf("failure message %q does not name what was awaited and what was last seen", msg)
	}
	if msg := run(t, Kube{}, func(k Kube) {
		k.Eventually("at once", func(context.Context) (bool, error) { return true, errors.New("ignored") })
	}); msg != "" {
		t.Errorf("a condition true at the first call failed: %s", msg)
	}
}

func TestWaitBound(t *testing.T) {
	claim := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "team"},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: "pv-1"},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	}
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"}}
	var got *v1.PersistentVolume
	if msg := run(t, kube(claim, pv), func(k Kube) { got = k.WaitBound("data") }); msg != "" || got == nil || got.Name != "pv-1" {
		t.Errorf("WaitBound of a Bound claim: PV %v, failure %q", got, msg)
	}

	pending := claim.DeepCopy()
	pending.Status.Phase = v1.ClaimPending
	ev := &v1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e1", Namespace: "team"},
		InvolvedObject: v1.ObjectReference{Kind: "PersistentVolumeClaim", Name: "data"},
		Reason:         "ProvisioningFailed", Message: "no space",
	}
	msg := run(t, kube(pending, ev), func(k Kube) { k.WaitBound("data") })
	if !strings.Contains(msg, "phase Pending") || !strings.Contains(msg, "ProvisioningFailed: no space") {
		t.Errorf("WaitBound of a Pending claim failed with %q; want its phase and events", msg)
	}
}

func TestWaitEvent(t *testing.T) {
	events := []kruntime.Object{
		&v1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "e1", Namespace: "default"},
			InvolvedObject: v1.ObjectReference{Kind: "PersistentVolume", Name: "pv-1"},
			Reason:         "RecycleStarted", Message: "Resuming the scrub",
		},
		&v1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "e2", Namespace: "default"},
			InvolvedObject: v1.ObjectReference{Kind: "PersistentVolume", Name: "pv-1"},
			Reason:         "VolumeRecycled", Message: "scrubbed; Available again",
		},
	}
	var got string
	// The claim's namespace is "team"; a PV's events are found wherever they were recorded.
	msg := run(t, kube(events...), func(k Kube) { got = k.WaitEvent("PersistentVolume", "pv-1", "VolumeRecycled", "Available") })
	if msg != "" || got != "VolumeRecycled: scrubbed; Available again" {
		t.Errorf("WaitEvent: got %q, failure %q", got, msg)
	}
	msg = run(t, kube(events...), func(k Kube) { k.WaitEvent("PersistentVolume", "pv-1", "RecycleStarted", "Resuming", "twice") })
	if !strings.Contains(msg, `mentioning ["Resuming" "twice"]`) || !strings.Contains(msg, "RecycleStarted: Resuming the scrub") {
		t.Errorf("WaitEvent with a word no event has failed with %q; want the wanted words and the events seen", msg)
	}
}

func TestWaitPVGoneReportsFinalizers(t *testing.T) {
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1", Finalizers: []string{"external-provisioner.volume.kubernetes.io/finalizer"}}}
	msg := run(t, kube(pv), func(k Kube) { k.WaitPVGone("pv-1") })
	if !strings.Contains(msg, "PV pv-1 gone") || !strings.Contains(msg, "external-provisioner.volume.kubernetes.io/finalizer") {
		t.Errorf("WaitPVGone of a PV held by a finalizer failed with %q; want the finalizer named", msg)
	}
	if msg := run(t, kube(), func(k Kube) { k.WaitPVGone("pv-1") }); msg != "" {
		t.Errorf("WaitPVGone of a missing PV failed: %s", msg)
	}
}

func TestDeleteClaim(t *testing.T) {
	claim := &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "team"}}
	k := kube(claim)
	if msg := run(t, k, func(k Kube) { k.DeleteClaim("data") }); msg != "" {
		t.Fatalf("DeleteClaim: %s", msg)
	}
	if _, err := k.GetClaim("data"); err == nil {
		t.Error("the claim still exists after DeleteClaim")
	}
	if msg := run(t, k, func(k Kube) { k.DeleteClaim("data") }); !strings.Contains(msg, "delete claim team/data") {
		t.Errorf("DeleteClaim of a missing claim failed with %q; want the claim named", msg)
	}
}
