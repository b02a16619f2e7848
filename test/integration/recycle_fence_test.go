package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/stowage-csi/stowage/pkg/reclaim"
)

// These tests run the recycler in-process against the real API server and
// PV controller, with a scrubber that takes as long as the test says, so
// that two recyclers, or a recycler and an admin, meet mid-scrub every
// time. The stowage binary is not started: the PVs belong to this test's
// own driver name, which no stowage process serves.

// gatedScrubber empties a directory, but only when the test lets it: until
// then it blocks, or until its context is cancelled. It counts calls and
// how many run at once, across every recycler that shares it.
type gatedScrubber struct {
	dir     string        // the volume's data
	open    chan struct{} // closed: scrubs may finish
	started chan string   // the recycler that began a scrub
	stopped chan string   // a scrub whose context was cancelled

	calls, active, maxActive atomic.Int32
}

func newGatedScrubber(dir string) *gatedScrubber {
	return &gatedScrubber{dir: dir, open: make(chan struct{}),
		started: make(chan string, 10), stopped: make(chan string, 10)}
}

// forRecycler is the Scrubber one recycler gets; who names it in started.
func (g *gatedScrubber) forRecycler(who string) reclaim.Scrubber { return scrubberOf{g, who} }

type scrubberOf struct {
	g   *gatedScrubber
	who string
}

func (s scrubberOf) ScrubVolume(ctx context.Context, _, _ string) error {
	g := s.g
	g.calls.Add(1)
	n := g.active.Add(1)
	defer g.active.Add(-1)
	for m := g.maxActive.Load(); n > m && !g.maxActive.CompareAndSwap(m, n); m = g.maxActive.Load() {
	}
	g.started <- s.who
	select {
	case <-ctx.Done():
		g.stopped <- s.who
		return ctx.Err()
	case <-g.open:
	}
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(g.dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// startRecycler runs a recycler for the test's driver with its own
// informer and event recorder, as a separate replica would, until the
// test ends.
func (h *harness) startRecycler(name string, s reclaim.Scrubber, lease, renew time.Duration) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(h.c, 0)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: h.c.CoreV1().Events("")})
	r, err := reclaim.New(reclaim.Config{
		DriverName: h.driver, Scrubber: s, Client: h.c, Owns: func(string) bool { return true },
		Volumes:  factory.Core().V1().PersistentVolumes().Informer(),
		Recorder: broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "recycler-" + name}),
		Identity: h.id + "-" + name, LeaseDuration: lease, RenewInterval: renew,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	factory.Start(ctx.Done())
	h.t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
		broadcaster.Shutdown()
	})
}

// releasedPV creates a Recycle PV of the test's driver, binds a claim to
// it, deletes the claim and waits for the PV controller to let go of it
// (Released, then Failed for want of a recycler plugin).
func (h *harness) releasedPV(name string) *v1.PersistentVolume {
	h.t.Helper()
	empty := ""
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: h.id + "-" + name},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Mi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRecycle,
			PersistentVolumeSource: v1.PersistentVolumeSource{
				CSI: &v1.CSIPersistentVolumeSource{Driver: h.driver, VolumeHandle: "fence#" + name},
			},
		},
	}
	pv, err := h.c.CoreV1().PersistentVolumes().Create(h.ctx, pv, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("create PV: %v", err)
	}
	h.claim(name, nil, "", "1Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, func(c *v1.PersistentVolumeClaim) {
		c.Spec.StorageClassName = &empty
		c.Spec.VolumeName = pv.Name
	})
	h.WaitBound(name)
	h.DeleteClaim(name)
	h.Eventually("PV "+pv.Name+" released", func(context.Context) (bool, error) {
		if pv, err = h.GetPV(pv.Name); err != nil {
			return false, err
		}
		return pv.Status.Phase == v1.VolumeFailed, fmt.Errorf("phase %s %q", pv.Status.Phase, pv.Status.Message)
	})
	return pv
}

// countAvailable counts the PV's transitions into Available from now on;
// seen lists the phases observed, for the failure message. An informer,
// not a bare watch: it retries when the API server's watch cache lags
// ("Too large resource version"), which it does on a loaded machine.
func (h *harness) countAvailable(name string) (count func() int, seen func() string) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(h.c, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}))
	var mu sync.Mutex
	n := 0
	var phases []string
	observe := func(old, pv *v1.PersistentVolume) {
		mu.Lock()
		defer mu.Unlock()
		phases = append(phases, string(pv.Status.Phase))
		if pv.Status.Phase == v1.VolumeAvailable && (old == nil || old.Status.Phase != v1.VolumeAvailable) {
			n++
		}
	}
	_, err := factory.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { observe(nil, obj.(*v1.PersistentVolume)) },
		UpdateFunc: func(old, obj interface{}) { observe(old.(*v1.PersistentVolume), obj.(*v1.PersistentVolume)) },
	})
	if err != nil {
		h.t.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	h.t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	count = func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	seen = func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(phases, ", ")
	}
	return count, seen
}

func recv(t *testing.T, c <-chan string, within time.Duration, what string) string {
	t.Helper()
	select {
	case s := <-c:
		return s
	case <-time.After(within):
		t.Fatalf("no %s within %v", what, within)
		return ""
	}
}

// TestRecycleFenceTwoRecyclers: two recyclers (a leader hand-off, two
// installs) see the same released PV. Only one scrubs; the other waits out
// its lease, which the scrubbing one keeps renewing for several lease
// durations. Then the PV is released once, with the data gone.
func TestRecycleFenceTwoRecyclers(t *testing.T) {
	h := newHarness(t)
	pv := h.releasedPV("raced")
	dir := t.TempDir()
	writeTree(t, dir, sample)
	g := newGatedScrubber(dir)
	availables, seen := h.countAvailable(pv.Name)
	const lease, renew = 2 * time.Second, 400 * time.Millisecond
	h.startRecycler("a", g.forRecycler("a"), lease, renew)
	h.startRecycler("b", g.forRecycler("b"), lease, renew)

	first := recv(t, g.started, wait, "scrub")
	time.Sleep(3 * lease) // the other would take over a lease that was not renewed
	if got, _ := h.GetPV(pv.Name); got != nil && got.Annotations[reclaim.AnnRecyclingHolder] != h.id+"-"+first {
		t.Errorf("lease holder %q mid-scrub, want %q", got.Annotations[reclaim.AnnRecyclingHolder], h.id+"-"+first)
	}
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d scrubs started while recycler %s held the lease, want 1", n, first)
	}
	close(g.open)

	available := h.WaitPVPhase(pv.Name, v1.VolumeAvailable)
	time.Sleep(2 * lease) // room for a late second scrub or release
	if n, m := g.calls.Load(), g.maxActive.Load(); n != 1 || m != 1 {
		t.Errorf("%d scrubs, at most %d at once; want 1 and 1", n, m)
	}
	if n := availables(); n != 1 {
		t.Errorf("the PV became Available %d times, want once; phases seen: %s", n, seen())
	}
	if available.Spec.ClaimRef != nil {
		t.Errorf("recycled PV still has claimRef %+v", available.Spec.ClaimRef)
	}
	for _, ann := range []string{reclaim.AnnRecyclingClaim, reclaim.AnnRecyclingHolder, reclaim.AnnRecyclingExpires} {
		if v, ok := available.Annotations[ann]; ok {
			t.Errorf("recycled PV still carries %s=%s", ann, v)
		}
	}
	if got := readTree(t, dir); got == nil || len(got) != 0 {
		t.Errorf("recycled volume holds %v, want an empty directory", got)
	}
	h.WaitEvent("PersistentVolume", pv.Name, "VolumeRecycled")
}

// TestRecycleFenceClaimRefChanged: an admin hands the PV on, or unbinds
// it, while it is being scrubbed. The scrub is cancelled at once (the
// renewal interval is long: only the watch can be this quick), nothing
// more is removed, and the recycler neither unbinds nor releases the PV.
func TestRecycleFenceClaimRefChanged(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		// change returns the admin's edit of the PV, after setting up
		// what it needs
		change func(h *harness, pv *v1.PersistentVolume) func(*v1.PersistentVolume)
		// after the change, the PV as the admin left it
		wantPhase v1.PersistentVolumePhase
		wantClaim string
	}{
		{
			name: "claimRef removed",
			change: func(*harness, *v1.PersistentVolume) func(*v1.PersistentVolume) {
				return func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef = nil }
			},
			wantPhase: v1.VolumeAvailable,
		},
		{
			name: "claimRef handed to a new claim",
			change: func(h *harness, pv *v1.PersistentVolume) func(*v1.PersistentVolume) {
				empty := ""
				c := h.claim("tenant-b", nil, "", "1Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, func(c *v1.PersistentVolumeClaim) {
					c.Spec.StorageClassName = &empty
					c.Spec.VolumeName = pv.Name
				})
				return func(pv *v1.PersistentVolume) {
					pv.Spec.ClaimRef = &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
						Namespace: c.Namespace, Name: c.Name, UID: c.UID}
				}
			},
			wantPhase: v1.VolumeBound, wantClaim: "tenant-b",
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := h.sub(t)
			pv := h.releasedPV(fmt.Sprintf("changed-%d", i))
			dir := t.TempDir()
			writeTree(t, dir, sample)
			g := newGatedScrubber(dir)
			h.startRecycler("a", g.forRecycler("a"), time.Minute, 20*time.Second)
			recv(t, g.started, wait, "scrub")

			edit := tc.change(h, pv)
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := h.GetPV(pv.Name)
				if err != nil {
					return err
				}
				edit(cur)
				_, err = h.c.CoreV1().PersistentVolumes().Update(h.ctx, cur, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			changed := time.Now()
			recv(t, g.stopped, 5*time.Second, "cancellation of the scrub after the claimRef changed")
			t.Logf("scrub cancelled %v after the change", time.Since(changed).Round(time.Millisecond))
			h.WaitEvent("PersistentVolume", pv.Name, "RecycleStopped", "claimRef changed", "nothing more was removed")

			close(g.open) // a scrub started now would empty the directory
			h.WaitPVPhase(pv.Name, tc.wantPhase)
			time.Sleep(3 * time.Second)
			got, err := h.GetPV(pv.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Phase != tc.wantPhase {
				t.Errorf("PV phase %s, want %s as the admin left it", got.Status.Phase, tc.wantPhase)
			}
			if name := claimName(got); name != tc.wantClaim {
				t.Errorf("PV bound to %q, want %q", name, tc.wantClaim)
			}
			for _, ann := range []string{reclaim.AnnRecyclingHolder, reclaim.AnnRecyclingExpires} {
				if v, ok := got.Annotations[ann]; ok {
					t.Errorf("the stopped recycler left its lease on the PV: %s=%s", ann, v)
				}
			}
			if n := g.calls.Load(); n != 1 {
				t.Errorf("%d scrubs, want 1", n)
			}
			if data := readTree(t, dir); !sameTree(data, sample) {
				t.Errorf("volume holds %v after the stopped scrub, want the data untouched %v", data, sample)
			}
			if evs := h.EventsOf("PersistentVolume", pv.Name); strings.Contains(evs, "VolumeRecycled") {
				t.Errorf("the PV was reported recycled: %s", evs)
			}
		})
	}
}

func claimName(pv *v1.PersistentVolume) string {
	if pv.Spec.ClaimRef == nil {
		return ""
	}
	return pv.Spec.ClaimRef.Name
}
