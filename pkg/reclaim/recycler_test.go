package reclaim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

type fakeScrubber struct {
	calls []string
	err   error
	// during, if set, runs as the scrub: what happens to the PV meanwhile.
	during func(ctx context.Context) error
}

func (f *fakeScrubber) ScrubVolume(ctx context.Context, id, pvName string) error {
	f.calls = append(f.calls, id+" for "+pvName)
	if f.during != nil {
		return f.during(ctx)
	}
	return f.err
}

const me = "recycler-a"

// leasedTo sets a recycling lease on the PV for its claim.
func leasedTo(holder string, expires time.Time) func(*v1.PersistentVolume) {
	return func(pv *v1.PersistentVolume) {
		pv.Annotations[AnnRecyclingClaim] = string(pv.Spec.ClaimRef.UID)
		pv.Annotations[AnnRecyclingHolder] = holder
		pv.Annotations[AnnRecyclingExpires] = expires.UTC().Format(time.RFC3339Nano)
	}
}

func all(mods ...func(*v1.PersistentVolume)) func(*v1.PersistentVolume) {
	return func(pv *v1.PersistentVolume) {
		for _, m := range mods {
			m(pv)
		}
	}
}

// changePV, run as the scrub, changes the PV as an admin or another
// controller would and waits for the scrub's context to be cancelled;
// it returns nil either way, as a scrubber that finished would, so that
// only the recycler's own checks keep it from releasing the PV.
func changePV(client *fake.Clientset, change func(*v1.PersistentVolume)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		pv, err := client.CoreV1().PersistentVolumes().Get(ctx, "pv-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(pv)
		if _, err := client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
			return errors.New("the scrub was not cancelled within 5s of the PV's change")
		}
	}
}

// TestSync runs Recycler.sync, the one function that decides and acts on a
// PV, against a fake clientset (the real API server is exercised by
// test/integration).
func TestSync(t *testing.T) {
	claim := func(uid string) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: types.UID("uid-" + uid)}}
	}
	dynamic := func(pv *v1.PersistentVolume) { pv.Annotations[annDynamicallyProvisioned] = driver }
	later, earlier := time.Now().Add(time.Hour), time.Now().Add(-time.Second)
	tests := []struct {
		name        string
		pv          *v1.PersistentVolume
		claim       *v1.PersistentVolumeClaim
		owns        bool
		scrubErr    error
		during      func(*fake.Clientset) func(context.Context) error
		conflict    bool // the lease update meets a conflict
		wantErr     bool
		wantRequeue bool // sync asks to look again later
		wantScrubs  int
		wantEvents  []string // reasons, in order
		wantUnbind  bool
		wantMarked  bool   // AnnRecyclingClaim still set afterwards
		wantHolder  string // AnnRecyclingHolder afterwards
	}{
		{
			name: "claim deleted: scrubbed and unbound", pv: releasedPV(dynamic), owns: true,
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonVolumeRecycled}, wantUnbind: true,
		},
		{
			name: "failed for lack of a recycler: scrubbed and unbound", owns: true,
			pv: releasedPV(func(pv *v1.PersistentVolume) {
				dynamic(pv)
				pv.Status = v1.PersistentVolumeStatus{Phase: v1.VolumeFailed, Message: "No recycler plugin found for the volume!"}
			}),
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonVolumeRecycled}, wantUnbind: true,
		},
		{
			name: "claim still exists: untouched", pv: releasedPV(dynamic), claim: claim("old"), owns: true,
		},
		{
			name: "a new claim took the old name: scrubbed", pv: releasedPV(dynamic), claim: claim("new"), owns: true,
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonVolumeRecycled}, wantUnbind: true,
		},
		{
			name: "scrub fails: still bound, marked, lease dropped, event", pv: releasedPV(dynamic), owns: true,
			scrubErr: errors.New("permission denied"), wantErr: true,
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonRecycleFailed}, wantMarked: true,
		},
		{
			name: "interrupted before leases existed: resumed", owns: true,
			pv: releasedPV(func(pv *v1.PersistentVolume) {
				dynamic(pv)
				pv.Annotations[AnnRecyclingClaim] = "uid-old"
			}),
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonVolumeRecycled}, wantUnbind: true,
		},
		{
			name: "another recycler holds the lease: untouched, looked at again later", owns: true,
			pv:          releasedPV(all(dynamic, leasedTo("recycler-b", later))),
			wantRequeue: true, wantMarked: true, wantHolder: "recycler-b",
		},
		{
			name: "another recycler's lease ran out: taken over and resumed", owns: true,
			pv:         releasedPV(all(dynamic, leasedTo("recycler-b", earlier))),
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonVolumeRecycled}, wantUnbind: true,
		},
		{
			name: "our own lease (an earlier attempt): resumed", owns: true,
			pv:         releasedPV(all(dynamic, leasedTo(me, later))),
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonVolumeRecycled}, wantUnbind: true,
		},
		{
			name: "the PV changes before the lease is taken: nothing scrubbed", owns: true,
			pv: releasedPV(dynamic), conflict: true, wantRequeue: true,
		},
		{
			name: "claimRef removed mid-scrub: scrub cancelled, not released", owns: true, pv: releasedPV(dynamic),
			during: func(c *fake.Clientset) func(context.Context) error {
				return changePV(c, func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef = nil })
			},
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonRecycleStopped}, wantUnbind: true, // by the admin
		},
		{
			name: "claimRef changed to a new claim mid-scrub: scrub cancelled, not released", owns: true, pv: releasedPV(dynamic),
			during: func(c *fake.Clientset) func(context.Context) error {
				return changePV(c, func(pv *v1.PersistentVolume) {
					pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: "ns", Name: "next", UID: "uid-next"}
					pv.Status.Phase = v1.VolumeBound
				})
			},
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonRecycleStopped},
		},
		{
			name: "lease taken by another recycler mid-scrub: scrub cancelled, its lease kept", owns: true, pv: releasedPV(dynamic),
			during: func(c *fake.Clientset) func(context.Context) error {
				return changePV(c, leasedTo("recycler-b", later))
			},
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonRecycleStopped}, wantMarked: true, wantHolder: "recycler-b",
		},
		{
			name: "PV being deleted mid-scrub: scrub cancelled", owns: true, pv: releasedPV(dynamic),
			during: func(c *fake.Clientset) func(context.Context) error {
				return changePV(c, func(pv *v1.PersistentVolume) { pv.DeletionTimestamp = &metav1.Time{Time: time.Now()} })
			},
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonRecycleStopped}, wantMarked: true,
		},
		{
			name: "another instance's volume: untouched", pv: releasedPV(dynamic), owns: false,
		},
		{
			name: "another driver's volume: untouched", owns: true,
			pv: releasedPV(func(pv *v1.PersistentVolume) { pv.Spec.CSI.Driver = "other.csi" }),
		},
		{
			name: "bound volume: untouched", owns: true,
			pv: releasedPV(func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeBound }),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			objs := []runtime.Object{tc.pv}
			if tc.claim != nil {
				objs = append(objs, tc.claim)
			}
			client := fake.NewClientset(objs...)
			if tc.conflict {
				client.PrependReactor("update", "persistentvolumes", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewConflict(v1.Resource("persistentvolumes"), tc.pv.Name, errors.New("changed"))
				})
			}
			pvInformer := informers.NewSharedInformerFactory(client, 0).Core().V1().PersistentVolumes().Informer()
			if err := pvInformer.GetIndexer().Add(tc.pv); err != nil {
				t.Fatal(err)
			}
			scrubber := &fakeScrubber{err: tc.scrubErr}
			if tc.during != nil {
				scrubber.during = tc.during(client)
			}
			recorder := record.NewFakeRecorder(10)
			r, err := New(Config{
				DriverName: driver, Scrubber: scrubber, Client: client, Volumes: pvInformer,
				Owns: func(string) bool { return tc.owns }, Recorder: recorder,
				// The informer does not run here: only renewals see the
				// PV change, so they come often.
				Identity: me, LeaseDuration: time.Minute, RenewInterval: 20 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}

			after, err := r.sync(ctx, tc.pv.Name)
			if (err != nil) != tc.wantErr {
				t.Fatalf("sync error = %v, want error: %v", err, tc.wantErr)
			}
			if (after > 0) != tc.wantRequeue {
				t.Errorf("sync asks to look again after %v, want a later look: %v", after, tc.wantRequeue)
			}
			if len(scrubber.calls) != tc.wantScrubs {
				t.Errorf("scrubbed %d times, want %d", len(scrubber.calls), tc.wantScrubs)
			}
			if tc.wantScrubs > 0 && scrubber.calls[0] != "nfs#srv#/export#pv-1 for pv-1" {
				t.Errorf("scrubbed %q, want the volume for PV pv-1", scrubber.calls[0])
			}
			close(recorder.Events)
			var reasons []string
			for e := range recorder.Events {
				reasons = append(reasons, strings.Fields(e)[1])
			}
			if strings.Join(reasons, ",") != strings.Join(tc.wantEvents, ",") {
				t.Errorf("events %v, want %v", reasons, tc.wantEvents)
			}
			got, err := client.CoreV1().PersistentVolumes().Get(ctx, tc.pv.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if unbound := got.Spec.ClaimRef == nil; unbound != tc.wantUnbind {
				t.Errorf("claimRef = %+v, want unbound: %v", got.Spec.ClaimRef, tc.wantUnbind)
			}
			if tc.wantUnbind && tc.during == nil && got.Status.Phase != v1.VolumeAvailable {
				t.Errorf("phase = %s, want Available", got.Status.Phase)
			}
			if _, marked := got.Annotations[AnnRecyclingClaim]; marked != tc.wantMarked {
				t.Errorf("annotation %s set: %v, want %v", AnnRecyclingClaim, marked, tc.wantMarked)
			}
			if h := got.Annotations[AnnRecyclingHolder]; h != tc.wantHolder {
				t.Errorf("lease holder %q, want %q", h, tc.wantHolder)
			}
			if _, ok := got.Annotations[AnnRecyclingExpires]; ok != (tc.wantHolder != "") {
				t.Errorf("annotation %s set: %v, want %v", AnnRecyclingExpires, ok, tc.wantHolder != "")
			}
		})
	}
}
