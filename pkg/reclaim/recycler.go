package reclaim

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
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
}

// Recycler scrubs released PVs with policy Recycle and makes them Available.
type Recycler struct {
	cfg    Config
	pvs    corelisters.PersistentVolumeLister
	queue  workqueue.TypedRateLimitingInterface[string]
	synced cache.InformerSynced
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
	r := &Recycler{
		cfg: cfg,
		pvs: corelisters.NewPersistentVolumeLister(cfg.Volumes.GetIndexer()),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](2*time.Second, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "recycler"}),
		synced: cfg.Volumes.HasSynced,
	}
	_, err := cfg.Volumes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj interface{}) { r.enqueue(obj) },
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
	logger.Info("Started recycler", "driver", r.cfg.DriverName, "workers", r.cfg.Workers)
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
		err := r.sync(ctx, name)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Recycling failed, will retry", "pv", name)
			r.queue.AddRateLimited(name)
		} else {
			r.queue.Forget(name)
		}
		r.queue.Done(name)
	}
}

// sync recycles one PV if it is due. It is written to be interrupted at any
// point: every step is repeated or skipped correctly on the next call.
func (r *Recycler) sync(ctx context.Context, name string) error {
	logger := klog.FromContext(ctx).WithValues("pv", name)
	cached, err := r.pvs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read PV %s from cache: %w", name, err)
	}
	if waitingReason(cached, r.cfg.DriverName) != "" || !r.cfg.Owns(cached.Spec.CSI.VolumeHandle) {
		return nil
	}
	// The cache may lag behind; decisions that destroy data are taken on
	// what the API server says now.
	pv, err := r.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get PV %s: %w", name, err)
	}
	if why := waitingReason(pv, r.cfg.DriverName); why != "" {
		logger.V(4).Info("Not recycling", "reason", why)
		return nil
	}
	ref := pv.Spec.ClaimRef
	exists, err := r.claimExists(ctx, ref)
	if err != nil {
		return err
	}
	if exists {
		logger.V(2).Info("Not recycling: the claim that bound the volume still exists", "claim", claimKey(ref))
		return nil
	}

	resuming := pv.Annotations[AnnRecyclingClaim] == string(ref.UID)
	if !resuming {
		if pv, err = r.markRecycling(ctx, pv); err != nil {
			return err
		}
	}
	handle := pv.Spec.CSI.VolumeHandle
	if resuming {
		r.cfg.Recorder.Eventf(pv, v1.EventTypeNormal, ReasonRecycleStarted,
			"Resuming an interrupted recycle of volume %s: scrubbing the data left by deleted claim %s", handle, claimKey(ref))
	} else {
		r.cfg.Recorder.Eventf(pv, v1.EventTypeNormal, ReasonRecycleStarted,
			"Scrubbing volume %s: claim %s was deleted and the reclaim policy is Recycle", handle, claimKey(ref))
	}
	logger.Info("Scrubbing volume", "volumeID", handle, "claim", claimKey(ref), "resuming", resuming)
	if err := r.cfg.Scrubber.ScrubVolume(ctx, handle); err != nil {
		r.cfg.Recorder.Eventf(pv, v1.EventTypeWarning, ReasonRecycleFailed,
			"Could not scrub volume %s: %v. The PV stays bound to its deleted claim and the scrub is retried; "+
				"fix the cause, or set the reclaim policy to Retain and clean the volume by hand", handle, err)
		return fmt.Errorf("scrub volume %s of PV %s: %w", handle, name, err)
	}
	if err := r.release(ctx, name, ref.UID); err != nil {
		return err
	}
	logger.Info("Volume recycled", "volumeID", handle)
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

// markRecycling records on the PV, before anything is removed, which
// released claim is being scrubbed away. The update is conditional on the
// PV's resourceVersion: if anyone changed the PV since it was read, nothing
// is scrubbed and the PV is looked at afresh.
func (r *Recycler) markRecycling(ctx context.Context, pv *v1.PersistentVolume) (*v1.PersistentVolume, error) {
	marked := pv.DeepCopy()
	metav1.SetMetaDataAnnotation(&marked.ObjectMeta, AnnRecyclingClaim, string(pv.Spec.ClaimRef.UID))
	out, err := r.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, marked, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("mark PV %s as being recycled: %w", pv.Name, err)
	}
	return out, nil
}

// release unbinds the PV from the claim whose data was just scrubbed and
// sets it Available. It gives up without error if the PV changed hands in
// the meantime (its claimRef no longer names that claim).
func (r *Recycler) release(ctx context.Context, name string, claimUID types.UID) error {
	pvs := r.cfg.Client.CoreV1().PersistentVolumes()
	var unbound *v1.PersistentVolume
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := pvs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != claimUID ||
			pv.Annotations[AnnRecyclingClaim] != string(claimUID) {
			klog.FromContext(ctx).Info("PV changed while it was being scrubbed; leaving it as it is", "pv", name)
			return nil
		}
		unbound, err = pvs.Update(ctx, unbind(pv), metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unbind recycled PV %s: %w", name, err)
	}
	if unbound == nil {
		return nil
	}
	// The PV controller would also do this on its next sync; doing it now
	// makes the volume usable at once. A conflict means someone (the PV
	// controller binding a new claim) got there first, which is fine.
	unbound.Status = v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable}
	if _, err := pvs.UpdateStatus(ctx, unbound, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "Could not set recycled PV Available; the PV controller will", "pv", name)
	}
	return nil
}
