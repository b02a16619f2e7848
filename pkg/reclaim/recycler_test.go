package reclaim

import (
	"context"
	"errors"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

type fakeScrubber struct {
	calls []string
	err   error
}

func (f *fakeScrubber) ScrubVolume(_ context.Context, id string) error {
	f.calls = append(f.calls, id)
	return f.err
}

// TestSync runs Recycler.sync, the one function that decides and acts on a
// PV, against a fake clientset (the real API server is exercised by
// test/integration).
func TestSync(t *testing.T) {
	claim := func(uid string) *v1.PersistentVolumeClaim {
		return &v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: types.UID("uid-" + uid)}}
	}
	dynamic := func(pv *v1.PersistentVolume) { pv.Annotations[annDynamicallyProvisioned] = driver }
	tests := []struct {
		name       string
		pv         *v1.PersistentVolume
		claim      *v1.PersistentVolumeClaim
		owns       bool
		scrubErr   error
		wantErr    bool
		wantScrubs int
		wantEvents []string // reasons, in order
		wantUnbind bool
		wantMarked bool // AnnRecyclingClaim still set afterwards
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
			name: "scrub fails: still bound, marked, event", pv: releasedPV(dynamic), owns: true,
			scrubErr: errors.New("permission denied"), wantErr: true,
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonRecycleFailed}, wantMarked: true,
		},
		{
			name: "interrupted earlier: resumed", owns: true,
			pv: releasedPV(func(pv *v1.PersistentVolume) {
				dynamic(pv)
				pv.Annotations[AnnRecyclingClaim] = "uid-old"
			}),
			wantScrubs: 1, wantEvents: []string{ReasonRecycleStarted, ReasonVolumeRecycled}, wantUnbind: true,
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
			pvInformer := informers.NewSharedInformerFactory(client, 0).Core().V1().PersistentVolumes().Informer()
			if err := pvInformer.GetIndexer().Add(tc.pv); err != nil {
				t.Fatal(err)
			}
			scrubber := &fakeScrubber{err: tc.scrubErr}
			recorder := record.NewFakeRecorder(10)
			r, err := New(Config{
				DriverName: driver, Scrubber: scrubber, Client: client, Volumes: pvInformer,
				Owns: func(string) bool { return tc.owns }, Recorder: recorder,
			})
			if err != nil {
				t.Fatal(err)
			}

			err = r.sync(ctx, tc.pv.Name)
			if (err != nil) != tc.wantErr {
				t.Fatalf("sync error = %v, want error: %v", err, tc.wantErr)
			}
			if len(scrubber.calls) != tc.wantScrubs {
				t.Errorf("scrubbed %d times, want %d", len(scrubber.calls), tc.wantScrubs)
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
			if tc.wantUnbind && got.Status.Phase != v1.VolumeAvailable {
				t.Errorf("phase = %s, want Available", got.Status.Phase)
			}
			if _, marked := got.Annotations[AnnRecyclingClaim]; marked != tc.wantMarked {
				t.Errorf("annotation %s set: %v, want %v", AnnRecyclingClaim, marked, tc.wantMarked)
			}
		})
	}
}
