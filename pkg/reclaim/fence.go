package reclaim

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// pvChanged is why a scrub was stopped when the PV stopped being ours to
// scrub; what says how, in words for an event.
type pvChanged struct{ what string }

func (e *pvChanged) Error() string { return e.what }

// changeOf says how pv (nil: deleted) is no longer the PV this recycler
// leased for scrubbing away claim ref's data, or "" if it still is.
func changeOf(pv *v1.PersistentVolume, ref *v1.ObjectReference, me string) string {
	switch {
	case pv == nil:
		return "the PV was deleted"
	case pv.DeletionTimestamp != nil:
		return "the PV is being deleted"
	case pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != ref.UID ||
		pv.Spec.ClaimRef.Name != ref.Name || pv.Spec.ClaimRef.Namespace != ref.Namespace:
		return "the PV's claimRef changed"
	case pv.Status.Phase != v1.VolumeReleased && pv.Status.Phase != v1.VolumeFailed:
		return fmt.Sprintf("the PV's phase changed to %s", pv.Status.Phase)
	case pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRecycle:
		return fmt.Sprintf("the PV's reclaim policy changed to %s", pv.Spec.PersistentVolumeReclaimPolicy)
	case pv.Annotations[AnnRecyclingHolder] != me:
		if h := pv.Annotations[AnnRecyclingHolder]; h != "" {
			return fmt.Sprintf("recycler %s took over the PV's recycling lease", h)
		}
		return "the PV's recycling lease was removed"
	case pv.Annotations[AnnRecyclingClaim] != string(ref.UID):
		return "the PV's recycling lease was changed to another claim"
	}
	return ""
}

// fence keeps a scrub of one PV honest: it renews the PV's lease while the
// scrub runs and cancels the scrub's context the moment the PV changes in a
// way that makes it no longer ours to scrub, or the lease cannot be renewed.
// Nothing else stops a scrub that is deleting files, and a PV handed to a
// new tenant must not lose another byte.
type fence struct {
	r      *Recycler
	name   string
	ref    *v1.ObjectReference // the released claim being scrubbed away
	ctx    context.Context     // the scrub's
	cancel context.CancelCauseFunc
	// check asks for an immediate look at the PV: the informer saw it
	// change. The informer's copy may be older than our lease, so a fresh
	// GET decides; one pending request is enough.
	check chan struct{}
	done  chan struct{}
}

// startFence starts guarding the scrub of pv, which this recycler has just
// leased for claim ref. Call stop when the scrub returns.
func (r *Recycler) startFence(ctx context.Context, pv *v1.PersistentVolume, ref *v1.ObjectReference) *fence {
	f := &fence{r: r, name: pv.Name, ref: ref.DeepCopy(), check: make(chan struct{}, 1), done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancelCause(ctx)
	r.mu.Lock()
	r.fences[pv.Name] = f
	r.mu.Unlock()
	go f.hold()
	return f
}

// stop ends the renewals and returns why the scrub was cancelled, nil if it
// was not.
func (f *fence) stop() error {
	f.r.mu.Lock()
	if f.r.fences[f.name] == f {
		delete(f.r.fences, f.name)
	}
	f.r.mu.Unlock()
	cause := context.Cause(f.ctx)
	f.cancel(nil)
	<-f.done
	return cause
}

func (f *fence) hold() {
	defer close(f.done)
	ticker := time.NewTicker(f.r.cfg.RenewInterval)
	defer ticker.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-ticker.C:
		case <-f.check:
		}
		// Renewing on every look costs one write per PV change seen, and
		// keeps the code to one path that both checks and extends.
		if err := f.renew(); err != nil {
			f.cancel(err)
			return
		}
	}
}

// renew reads the PV from the API server and, if it is still ours to
// scrub, extends the lease. A conflict means the PV changed between the
// read and the write; the change is looked at before trying again, so that
// a change that matters stops the scrub and one that does not (the PV
// controller setting Released to Failed) does not.
func (f *fence) renew() error {
	me := f.r.cfg.Identity
	pvs := f.r.cfg.Client.CoreV1().PersistentVolumes()
	// Bounded, so that an API server that does not answer stops the
	// scrub well before the lease runs out and someone else may take it.
	ctx, cancel := context.WithTimeout(f.ctx, f.r.cfg.RenewInterval)
	defer cancel()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := pvs.Get(ctx, f.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return &pvChanged{changeOf(nil, f.ref, me)}
		}
		if err != nil {
			return err
		}
		if what := changeOf(pv, f.ref, me); what != "" {
			return &pvChanged{what}
		}
		_, err = pvs.Update(ctx, withLease(pv, me, f.ref.UID, time.Now().Add(f.r.cfg.LeaseDuration)), metav1.UpdateOptions{})
		return err
	})
	var changed *pvChanged
	if err != nil && !errors.As(err, &changed) {
		return fmt.Errorf("renew the recycling lease on PV %s: %w", f.name, err)
	}
	return err
}

// pvUpdated runs for every PV the informer sees change: if a scrub of it
// is running and the new state means the PV may no longer be ours, the
// fence looks at once rather than at the next renewal.
func (r *Recycler) pvUpdated(obj interface{}) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok {
		return
	}
	r.mu.Lock()
	f := r.fences[pv.Name]
	r.mu.Unlock()
	if f != nil && changeOf(pv, f.ref, r.cfg.Identity) != "" {
		f.poke()
	}
}

func (r *Recycler) pvDeleted(obj interface{}) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok {
		return
	}
	r.mu.Lock()
	f := r.fences[pv.Name]
	r.mu.Unlock()
	if f != nil {
		f.poke()
	}
}

func (f *fence) poke() {
	select {
	case f.check <- struct{}{}:
	default:
	}
	klog.FromContext(f.ctx).V(4).Info("PV changed during its scrub; checking it", "pv", f.name)
}
