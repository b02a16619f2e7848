package reclaim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/metrics"
)

// Config says which PVs a Recycler looks after and how it reaches them.
type Config struct {
	// DriverName: only PVs whose spec.csi.driver is this are touched.
	DriverName string
	// Scrubber empties a volume.
	Scrubber Scrubber
	Client   kubernetes.Interface
	// Volumes is a PV informer; the caller starts it.
	Volumes cache.SharedIndexInformer
	// Owns says whether this instance recycles the volume with this CSI
	// volume handle: local volumes can only be scrubbed on their node, so
	// each node instance takes its own and the controller takes NFS ones.
	Owns func(volumeHandle string) bool
	// Recorder records events on PVs.
	Recorder record.EventRecorder
	// Workers is how many volumes are scrubbed at once; 0 means 2.
	Workers int
	// Identity names this recycler in the PVs' recycling leases; it must
	// differ between every two recyclers that may run at the same time,
	// restarts included. "" means hostname, pid and a random suffix.
	Identity string
	// LeaseDuration is how long a recycling lease lasts unless renewed:
	// how long a recycler that died mid-scrub blocks the PV. 0 means 60s.
	LeaseDuration time.Duration
	// RenewInterval is how often the lease is renewed during a scrub; it
	// must be under half of LeaseDuration, so that a renewal that fails
	// (and the scrub that stops with it) happens while the lease still
	// holds. 0 means 20s.
	RenewInterval time.Duration
}

// Recycler scrubs released PVs with policy Recycle and makes them Available.
type Recycler struct {
	cfg    Config
	pvs    corelisters.PersistentVolumeLister
	queue  workqueue.TypedRateLimitingInterface[string]
	synced cache.InformerSynced

	mu     sync.Mutex
	fences map[string]*fence // by PV name, while it is scrubbed
}

// New checks cfg and registers the recycler's handlers on the PV informer;
// call it before the informer starts.
func New(cfg Config) (*Recycler, error) {
	switch {
	case cfg.DriverName == "":
		return nil, errors.New("recycler: DriverName is empty")
	case cfg.Scrubber == nil:
		return nil, errors.New("recycler: Scrubber is nil")
	case cfg.Client == nil:
		return nil, errors.New("recycler: Client is nil")
	case cfg.Volumes == nil:
		return nil, errors.New("recycler: Volumes informer is nil")
	case cfg.Owns == nil:
		return nil, errors.New("recycler: Owns is nil")
	case cfg.Recorder == nil:
		return nil, errors.New("recycler: Recorder is nil")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Identity == "" {
		cfg.Identity = defaultIdentity()
	}
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 60 * time.Second
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = 20 * time.Second
	}
	if 2*cfg.RenewInterval >= cfg.LeaseDuration {
		return nil, fmt.Errorf("recycler: RenewInterval %v must be under half of LeaseDuration %v, so that a scrub "+
			"whose lease cannot be renewed stops before the lease runs out", cfg.RenewInterval, cfg.LeaseDuration)
	}
	r := &Recycler{
		cfg: cfg,
		pvs: corelisters.NewPersistentVolumeLister(cfg.Volumes.GetIndexer()),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](2*time.Second, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "recycler"}),
		synced: cfg.Volumes.HasSynced,
		fences: map[string]*fence{},
	}
	_, err := cfg.Volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: r.enqueue,
		UpdateFunc: func(_, obj interface{}) {
			r.pvUpdated(obj)
			r.enqueue(obj)
		},
		DeleteFunc: r.pvDeleted,
	})
	if err != nil {
		return nil, fmt.Errorf("recycler: watch PVs: %w", err)
	}
	return r, nil
}

// enqueue queues only PVs that may need recycling, so that the queue stays
// empty in a cluster full of bound volumes.
func (r *Recycler) enqueue(obj interface{}) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok || waitingReason(pv, r.cfg.DriverName) != "" {
		return
	}
	r.queue.Add(pv.Name)
}

// Run processes released volumes until ctx is done.
func (r *Recycler) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer r.queue.ShutDown()
	logger := klog.FromContext(ctx).WithName("recycler")
	ctx = klog.NewContext(ctx, logger)
	if !cache.WaitForCacheSync(ctx.Done(), r.synced) {
		return
	}
	logger.Info("Started recycler", "driver", r.cfg.DriverName, "workers", r.cfg.Workers, "identity", r.cfg.Identity)
	for i := 0; i < r.cfg.Workers; i++ {
		go wait.UntilWithContext(ctx, r.worker, time.Second)
	}
	<-ctx.Done()
}

func (r *Recycler) worker(ctx context.Context) {
	for {
		name, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		after, err := r.sync(ctx, name)
		switch {
		case err != nil:
			klog.FromContext(ctx).Error(err, "Recycling failed, will retry", "pv", name)
			r.queue.AddRateLimited(name)
		case after > 0:
			r.queue.Forget(name)
			r.queue.AddAfter(name, after)
		default:
			r.queue.Forget(name)
		}
		r.queue.Done(name)
	}
}

// sync recycles one PV if it is due. It is written to be interrupted at any
// point: every step is repeated or skipped correctly on the next call. A
// positive duration asks to look at the PV again after it (another
// recycler's lease runs out then).
func (r *Recycler) sync(ctx context.Context, name string) (time.Duration, error) {
	logger := klog.FromContext(ctx).WithValues("pv", name)
	cached, err := r.pvs.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read PV %s from cache: %w", name, err)
	}
	if waitingReason(cached, r.cfg.DriverName) != "" || !r.cfg.Owns(cached.Spec.CSI.VolumeHandle) {
		return 0, nil
	}
	// The cache may lag behind; decisions that destroy data are taken on
	// what the API server says now.
	pv, err := r.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get PV %s: %w", name, err)
	}
	if why := waitingReason(pv, r.cfg.DriverName); why != "" {
		logger.V(4).Info("Not recycling", "reason", why)
		return 0, nil
	}
	ref := pv.Spec.ClaimRef.DeepCopy()
	exists, err := r.claimExists(ctx, ref)
	if err != nil {
		return 0, err
	}
	if exists {
		logger.V(2).Info("Not recycling: the claim that bound the volume still exists", "claim", claimKey(ref))
		return 0, nil
	}

	lease := decideLease(pv, r.cfg.Identity, time.Now())
	if !lease.take {
		// Every recycler sees every released PV; an event each time would
		// drown the one that matters.
		logger.V(2).Info("Not recycling: another recycler is scrubbing the volume", "holder", lease.holder, "expires", lease.expires)
		// Look again when the lease runs out, in case its holder died;
		// no later than one lease from now, whatever expiry it wrote.
		return min(time.Until(lease.expires)+time.Second, r.cfg.LeaseDuration), nil
	}
	if lease.holder != "" {
		logger.Info("Taking over the recycling lease of a recycler that stopped renewing it",
			"holder", lease.holder, "expired", lease.expires)
	}
	if pv, err = r.takeLease(ctx, pv); err != nil {
		if apierrors.IsConflict(err) {
			logger.V(2).Info("PV changed before the recycling lease was taken; looking at it again")
			return time.Second, nil
		}
		return 0, err
	}
	return 0, r.scrub(ctx, pv, ref, lease.resume)
}

// scrub empties the volume of pv, which this recycler has leased for
// scrubbing away claim ref's data, and releases the PV if it is still ours.
func (r *Recycler) scrub(ctx context.Context, pv *v1.PersistentVolume, ref *v1.ObjectReference, resuming bool) error {
	name, handle := pv.Name, pv.Spec.CSI.VolumeHandle
	logger := klog.FromContext(ctx).WithValues("pv", name)
	if resuming {
		r.cfg.Recorder.Eventf(pv, v1.EventTypeNormal, ReasonRecycleStarted,
			"Resuming an interrupted recycle of volume %s: scrubbing the data left by deleted claim %s", handle, claimKey(ref))
	} else {
		r.cfg.Recorder.Eventf(pv, v1.EventTypeNormal, ReasonRecycleStarted,
			"Scrubbing volume %s: claim %s was deleted and the reclaim policy is Recycle", handle, claimKey(ref))
	}
	logger.Info("Scrubbing volume", "volumeID", handle, "claim", claimKey(ref), "resuming", resuming)
	// Only a scrub that ended counts: one stopped because the PV changed
	// or the recycler shut down neither failed nor recycled anything.
	start := time.Now()
	ended := func(err error) error {
		metrics.Observe(metrics.Recycle, start, err)
		return err
	}
	f := r.startFence(ctx, pv, ref)
	err := r.cfg.Scrubber.ScrubVolume(f.ctx, handle, name)
	stopped := f.stop()

	var changed *pvChanged
	switch {
	case errors.As(stopped, &changed):
		logger.Info("Scrub stopped: the PV changed", "volumeID", handle, "change", changed.what)
		r.cfg.Recorder.Eventf(pv, v1.EventTypeWarning, ReasonRecycleStopped,
			"Scrub of volume %s stopped: %s while it was being scrubbed; nothing more was removed", handle, changed.what)
		r.dropLease(ctx, name, ref.UID)
		return nil
	case ctx.Err() != nil:
		logger.Info("Scrub stopped: the recycler is shutting down", "volumeID", handle)
		r.dropLease(ctx, name, ref.UID)
		return nil
	case stopped != nil:
		// The lease could not be renewed: the API server is unreachable
		// or refuses, and after expiry someone else may scrub.
		r.dropLease(ctx, name, ref.UID)
		return ended(fmt.Errorf("scrub of volume %s of PV %s stopped: %w", handle, name, stopped))
	case err != nil:
		r.cfg.Recorder.Eventf(pv, v1.EventTypeWarning, ReasonRecycleFailed,
			"Could not scrub volume %s: %v. The PV stays bound to its deleted claim and the scrub is retried; "+
				"fix the cause, or set the reclaim policy to Retain and clean the volume by hand", handle, err)
		r.dropLease(ctx, name, ref.UID)
		return ended(fmt.Errorf("scrub volume %s of PV %s: %w", handle, name, err))
	}
	released, err := r.release(ctx, name, ref)
	if err != nil {
		r.dropLease(ctx, name, ref.UID)
		return ended(err)
	}
	if !released {
		r.dropLease(ctx, name, ref.UID)
		return nil
	}
	logger.Info("Volume recycled", "volumeID", handle)
	metrics.Observe(metrics.Recycle, start, nil)
	r.cfg.Recorder.Eventf(pv, v1.EventTypeNormal, ReasonVolumeRecycled,
		"Volume %s scrubbed; the PV is Available for a new claim", handle)
	return nil
}

// claimExists reports whether the claim that ref points to still exists,
// asking the API server rather than a cache.
func (r *Recycler) claimExists(ctx context.Context, ref *v1.ObjectReference) (bool, error) {
	claim, err := r.cfg.Client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check whether claim %s still exists: %w", claimKey(ref), err)
	}
	return claimStillExists(ref, claim), nil
}

// release unbinds the PV from the claim whose data was just scrubbed,
// clears the lease, and sets the PV Available. It gives up without error,
// reporting false, unless the PV is still exactly what was leased: the
// lease ours and the claimRef naming that claim. The update is conditional,
// so nobody can change the PV between that check and the unbind.
func (r *Recycler) release(ctx context.Context, name string, ref *v1.ObjectReference) (bool, error) {
	pvs := r.cfg.Client.CoreV1().PersistentVolumes()
	var unbound *v1.PersistentVolume
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := pvs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if what := changeOf(pv, ref, r.cfg.Identity); what != "" {
			klog.FromContext(ctx).Info("PV changed while it was being scrubbed; leaving it as it is", "pv", name, "change", what)
			return nil
		}
		unbound, err = pvs.Update(ctx, unbind(pv), metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("unbind recycled PV %s: %w", name, err)
	}
	if unbound == nil {
		return false, nil
	}
	// The PV controller would also do this on its next sync; doing it now
	// makes the volume usable at once. A conflict means someone (the PV
	// controller binding a new claim) got there first, which is fine.
	unbound.Status = v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable}
	if _, err := pvs.UpdateStatus(ctx, unbound, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "Could not set recycled PV Available; the PV controller will", "pv", name)
	}
	return true, nil
}
