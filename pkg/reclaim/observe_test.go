package reclaim

import (
	"context"
	"errors"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/stowage-csi/stowage/pkg/metrics"
)

// recycles reads stowage_operations_total{operation="recycle",result}.
func recycles(_ *testing.T, result string) float64 { return metrics.Count("recycle", result) }

func TestRecyclesAreCounted(t *testing.T) {
	tests := []struct {
		name              string
		scrubber          func(*fake.Clientset) *fakeScrubber
		wantOK, wantError float64
	}{
		{"recycled", func(*fake.Clientset) *fakeScrubber { return &fakeScrubber{} }, 1, 0},
		{"scrub fails", func(*fake.Clientset) *fakeScrubber { return &fakeScrubber{err: errors.New("EIO")} }, 0, 1},
		{"PV changed mid-scrub: neither", func(c *fake.Clientset) *fakeScrubber {
			return &fakeScrubber{during: changePV(c, func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef = nil })}
		}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pv := releasedPV(func(pv *v1.PersistentVolume) { pv.Annotations[annDynamicallyProvisioned] = driver })
			client := fake.NewClientset(pv)
			volumes := informers.NewSharedInformerFactory(client, 0).Core().V1().PersistentVolumes().Informer()
			if err := volumes.GetIndexer().Add(pv); err != nil {
				t.Fatal(err)
			}
			r, err := New(Config{
				DriverName: driver, Scrubber: tc.scrubber(client), Client: client, Volumes: volumes,
				Owns: func(string) bool { return true }, Recorder: record.NewFakeRecorder(10),
				Identity: me, LeaseDuration: time.Minute, RenewInterval: 20 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			okBefore, errBefore := recycles(t, "OK"), recycles(t, "Unknown")
			_, _ = r.sync(context.Background(), pv.Name)
			if got := recycles(t, "OK") - okBefore; got != tc.wantOK {
				t.Errorf("recycle OK went up by %v, want %v", got, tc.wantOK)
			}
			if got := recycles(t, "Unknown") - errBefore; got != tc.wantError {
				t.Errorf("recycle failures went up by %v, want %v", got, tc.wantError)
			}
		})
	}
}
