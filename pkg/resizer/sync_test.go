package resizer

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

const testDriver = "csi.stowage.io"

// fakeExpander answers ControllerExpandVolume with errs in turn, then
// with the size asked for; it remembers the sizes asked for.
type fakeExpander struct {
	mu    sync.Mutex
	errs  []error
	asked []int64
	has   int64 // the volume's size, if more than asked: the driver never shrinks
}

func (f *fakeExpander) ControllerExpandVolume(_ context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, req.GetCapacityRange().GetRequiredBytes())
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: max(f.has, req.GetCapacityRange().GetRequiredBytes())}, nil
}

func (f *fakeExpander) calls() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.asked...)
}

// world is one claim grown from 1Gi to 2Gi, on a fake API server.
type world struct {
	t      *testing.T
	ctx    context.Context
	client *fake.Clientset
	r      *Resizer
	exp    *fakeExpander
	events *record.FakeRecorder
}

func newWorld(t *testing.T, mod func(*v1.PersistentVolumeClaim, *v1.PersistentVolume, *storagev1.StorageClass), owns bool) *world {
	t.Helper()
	allow := true
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "sc"}, Provisioner: testDriver, AllowVolumeExpansion: &allow}
	class := "sc"
	pvc := claimAt("2Gi", "1Gi", "", "")
	pvc.ObjectMeta = metav1.ObjectMeta{Name: "data", Namespace: "ns", UID: "uid-1"}
	pvc.Spec.StorageClassName = &class
	pv := pvOf("1Gi")
	pv.ObjectMeta = metav1.ObjectMeta{Name: "pv"}
	pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "ns", Name: "data", UID: "uid-1"}
	pv.Spec.CSI = &v1.CSIPersistentVolumeSource{Driver: testDriver, VolumeHandle: "nfs#10.0.0.5#/export#pv#pv#delete"}
	if mod != nil {
		mod(pvc, pv, sc)
	}
	w := &world{t: t, client: fake.NewClientset(pvc, pv, sc), exp: &fakeExpander{}, events: record.NewFakeRecorder(100)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.ctx = ctx
	factory := informers.NewSharedInformerFactory(w.client, 0)
	r, err := New(Config{
		DriverName: testDriver, Expander: w.exp, Client: w.client, Recorder: w.events,
		Owns: func(*v1.PersistentVolume) bool { return owns },
	}, factory)
	if err != nil {
		t.Fatal(err)
	}
	w.r = r
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return w
}

// sync runs one sync once the caches show what the fake API server holds.
func (w *world) sync() error {
	w.t.Helper()
	err := wait.PollUntilContextTimeout(w.ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		pvc, pv := w.stored()
		cpvc, err1 := w.r.claims.PersistentVolumeClaims("ns").Get("data")
		cpv, err2 := w.r.volumes.Get("pv")
		return err1 == nil && err2 == nil && reflect.DeepEqual(cpvc.Status, pvc.Status) && reflect.DeepEqual(cpv.Spec, pv.Spec), nil
	})
	if err != nil {
		w.t.Fatalf("caches never caught up: %v", err)
	}
	return w.r.sync(w.ctx, "ns/data")
}

func (w *world) stored() (*v1.PersistentVolumeClaim, *v1.PersistentVolume) {
	w.t.Helper()
	pvc, err := w.client.CoreV1().PersistentVolumeClaims("ns").Get(w.ctx, "data", metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	pv, err := w.client.CoreV1().PersistentVolumes().Get(w.ctx, "pv", metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return pvc, pv
}

// drained returns the events recorded so far.
func (w *world) drained() []string {
	var out []string
	for {
		select {
		case e := <-w.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func size(q resource.Quantity) string { return q.String() }

func TestSyncGrows(t *testing.T) {
	w := newWorld(t, nil, true)
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	pvc, pv := w.stored()
	if got := size(pv.Spec.Capacity[v1.ResourceStorage]); got != "2Gi" {
		t.Errorf("PV capacity %s, want 2Gi", got)
	}
	if got := size(pvc.Status.Capacity[v1.ResourceStorage]); got != "2Gi" {
		t.Errorf("claim capacity %s, want 2Gi", got)
	}
	if pvc.Status.AllocatedResourceStatuses != nil || len(pvc.Status.Conditions) != 0 {
		t.Errorf("claim still says %v, conditions %v", pvc.Status.AllocatedResourceStatuses, pvc.Status.Conditions)
	}
	if got := w.exp.calls(); !reflect.DeepEqual(got, []int64{2 << 30}) {
		t.Errorf("driver asked for %v, want once for 2Gi", got)
	}
	events := strings.Join(w.drained(), "\n")
	for _, want := range []string{"Normal Resizing", "Normal VolumeResizeSuccessful"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	// Settled: another sync does nothing.
	if err := w.sync(); err != nil || len(w.exp.calls()) != 1 {
		t.Errorf("second sync: %v, driver calls %v", err, w.exp.calls())
	}
}

func TestSyncInfeasibleIsFinal(t *testing.T) {
	w := newWorld(t, nil, true)
	w.exp.errs = []error{status.Error(codes.OutOfRange, "volumes never shrink")}
	if err := w.sync(); err != nil {
		t.Fatalf("an infeasible resize is not retried, but sync asked to: %v", err)
	}
	pvc, pv := w.stored()
	if got := pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage]; got != infeas {
		t.Errorf("resize status %q, want %q", got, infeas)
	}
	if !hasConditionLike(pvc, v1.PersistentVolumeClaimControllerResizeError, "volumes never shrink") {
		t.Errorf("conditions %+v lack the driver's message", pvc.Status.Conditions)
	}
	if got := size(pv.Spec.Capacity[v1.ResourceStorage]); got != "1Gi" {
		t.Errorf("PV capacity %s after a failure, want 1Gi", got)
	}
	if events := strings.Join(w.drained(), "\n"); !strings.Contains(events, "Warning VolumeResizeFailed") || !strings.Contains(events, "volumes never shrink") {
		t.Errorf("events lack the failure:\n%s", events)
	}
	if err := w.sync(); err != nil || len(w.exp.calls()) != 1 {
		t.Errorf("sync after an infeasible failure: %v, driver calls %v; want no new call", err, w.exp.calls())
	}

	// The user lowers the request: it is tried at once.
	pvc, _ = w.stored()
	pvc.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse("1536Mi")
	if _, err := w.client.CoreV1().PersistentVolumeClaims("ns").Update(w.ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		c, _ := w.r.claims.PersistentVolumeClaims("ns").Get("data")
		return c.Spec.Resources.Requests.Storage().String() == "1536Mi"
	})
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	pvc, _ = w.stored()
	if got := size(pvc.Status.Capacity[v1.ResourceStorage]); got != "1536Mi" || pvc.Status.AllocatedResourceStatuses != nil {
		t.Errorf("after the lower request: capacity %s, status %v; want 1536Mi and none", got, pvc.Status.AllocatedResourceStatuses)
	}
}

func TestSyncTransientRetries(t *testing.T) {
	w := newWorld(t, nil, true)
	w.exp.errs = []error{status.Error(codes.Aborted, "an operation on this volume is in progress")}
	if err := w.sync(); err == nil {
		t.Fatal("a transient failure must ask for a retry")
	}
	pvc, _ := w.stored()
	if got := pvc.Status.AllocatedResourceStatuses[v1.ResourceStorage]; got != inProg {
		t.Errorf("resize status %q, want %q while retrying", got, inProg)
	}
	if !hasConditionLike(pvc, v1.PersistentVolumeClaimControllerResizeError, "in progress") {
		t.Errorf("conditions %+v lack the driver's message", pvc.Status.Conditions)
	}
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	pvc, _ = w.stored()
	if got := size(pvc.Status.Capacity[v1.ResourceStorage]); got != "2Gi" || len(pvc.Status.Conditions) != 0 {
		t.Errorf("after the retry: capacity %s, conditions %v", got, pvc.Status.Conditions)
	}
}

// A request lowered after a failure whose expansion got further: the
// claim and PV get what the volume has, not less.
func TestSyncTakesWhatTheVolumeHas(t *testing.T) {
	w := newWorld(t, func(pvc *v1.PersistentVolumeClaim, _ *v1.PersistentVolume, _ *storagev1.StorageClass) {
		*pvc = *failed(inProgress(pvc, resource.MustParse("3Gi")), "deadline exceeded", false)
	}, true)
	w.exp.has = 3 << 30
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	pvc, pv := w.stored()
	if got := size(pvc.Status.Capacity[v1.ResourceStorage]); got != "3Gi" {
		t.Errorf("claim capacity %s, want the 3Gi the volume has", got)
	}
	if got := size(pv.Spec.Capacity[v1.ResourceStorage]); got != "3Gi" {
		t.Errorf("PV capacity %s, want 3Gi", got)
	}
	if got := w.exp.calls(); !reflect.DeepEqual(got, []int64{2 << 30}) {
		t.Errorf("driver asked for %v, want the lowered request 2Gi", got)
	}
}

// A restart after the PV was updated but before the claim was: only the
// claim is left, and the driver is not asked again.
func TestSyncFinishesAfterRestart(t *testing.T) {
	w := newWorld(t, func(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, _ *storagev1.StorageClass) {
		*pvc = *inProgress(pvc, resource.MustParse("2Gi"))
		pv.Spec.Capacity[v1.ResourceStorage] = resource.MustParse("2Gi")
	}, true)
	if err := w.sync(); err != nil {
		t.Fatal(err)
	}
	pvc, _ := w.stored()
	if got := size(pvc.Status.Capacity[v1.ResourceStorage]); got != "2Gi" || pvc.Status.AllocatedResourceStatuses != nil {
		t.Errorf("capacity %s, status %v", got, pvc.Status.AllocatedResourceStatuses)
	}
	if calls := w.exp.calls(); len(calls) != 0 {
		t.Errorf("driver called %v", calls)
	}
}

func TestSyncLeavesOthersAlone(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(*v1.PersistentVolumeClaim, *v1.PersistentVolume, *storagev1.StorageClass)
		owns bool
	}{
		"another instance's volume": {nil, false},
		"another driver's volume": {func(_ *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, _ *storagev1.StorageClass) {
			pv.Spec.CSI.Driver = "other.example.com"
		}, true},
		"a class without expansion": {func(_ *v1.PersistentVolumeClaim, _ *v1.PersistentVolume, sc *storagev1.StorageClass) {
			sc.AllowVolumeExpansion = nil
		}, true},
		"a PV bound to another claim": {func(_ *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, _ *storagev1.StorageClass) {
			pv.Spec.ClaimRef.UID = "uid-2"
		}, true},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, tc.mod, tc.owns)
			if err := w.sync(); err != nil {
				t.Fatal(err)
			}
			pvc, _ := w.stored()
			if calls := w.exp.calls(); len(calls) != 0 || pvc.Status.AllocatedResourceStatuses != nil {
				t.Errorf("driver called %v, claim status %v; want nothing", calls, pvc.Status.AllocatedResourceStatuses)
			}
		})
	}
}

// Missing rights on the claim's status are told to the user, not only logged.
func TestSyncTellsWhenTheClaimCannotBeWritten(t *testing.T) {
	w := newWorld(t, nil, true)
	w.client.PrependReactor("patch", "persistentvolumeclaims", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(v1.Resource("persistentvolumeclaims/status"), "data", errors.New("RBAC: no patch"))
	})
	if err := w.sync(); err == nil {
		t.Fatal("sync succeeded without writing the claim")
	}
	if events := strings.Join(w.drained(), "\n"); !strings.Contains(events, "Warning VolumeResizeFailed") || !strings.Contains(events, "RBAC: no patch") {
		t.Errorf("events do not tell why:\n%s", events)
	}
	if calls := w.exp.calls(); len(calls) != 0 {
		t.Errorf("driver called %v before the claim said so", calls)
	}
}

func hasConditionLike(pvc *v1.PersistentVolumeClaim, t v1.PersistentVolumeClaimConditionType, sub string) bool {
	for _, c := range pvc.Status.Conditions {
		if c.Type == t && c.Status == v1.ConditionTrue && strings.Contains(c.Message, sub) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatal("condition never met")
	}
}
