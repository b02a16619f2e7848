package reclaim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// The recycling lease. AnnRecyclingClaim alone only said "a scrub of this
// claim's data is unfinished"; a second recycler that saw it resumed the
// scrub alongside the first, and went on deleting after the PV had been
// handed to a new tenant. The holder and expiry make the marker a lease:
// only its holder scrubs, and it renews the lease for as long as it does.
const (
	// AnnRecyclingHolder is the Identity of the recycler scrubbing the PV.
	AnnRecyclingHolder = "stowage.io/recycling-holder"
	// AnnRecyclingExpires is when the holder's lease runs out unless it is
	// renewed, in RFC 3339. After that another recycler may take over and
	// resume the scrub. Recyclers compare it with their own clock, so their
	// clocks must agree to well within the lease duration.
	AnnRecyclingExpires = "stowage.io/recycling-expires"
)

// leaseDecision is what a recycler may do with a released PV's lease.
type leaseDecision struct {
	// take: nobody else holds a live lease; the recycler may take it.
	take bool
	// resume: the marker names the claim that released the PV, so an
	// earlier scrub of its data did not finish.
	resume bool
	// holder and expires describe someone else's lease: live if !take,
	// run out (taken over) if take.
	holder  string
	expires time.Time
}

// decideLease reads the lease on pv, released by the claim in its claimRef,
// as the recycler me sees it at now. A marker without holder was written by
// a recycler from before leases (or one that dropped its lease): nobody
// holds it. An expiry that does not parse counts as run out, so that a
// mangled annotation cannot block recycling for ever.
func decideLease(pv *v1.PersistentVolume, me string, now time.Time) leaseDecision {
	d := leaseDecision{take: true}
	if pv.Spec.ClaimRef != nil {
		d.resume = pv.Annotations[AnnRecyclingClaim] == string(pv.Spec.ClaimRef.UID) && pv.Spec.ClaimRef.UID != ""
	}
	holder := pv.Annotations[AnnRecyclingHolder]
	if holder == "" || holder == me {
		return d
	}
	d.holder = holder
	d.expires, _ = time.Parse(time.RFC3339Nano, pv.Annotations[AnnRecyclingExpires])
	d.take = !now.Before(d.expires)
	return d
}

// withLease returns a copy of pv leased to holder until expires for
// scrubbing the data of claim claimUID.
func withLease(pv *v1.PersistentVolume, holder string, claimUID types.UID, expires time.Time) *v1.PersistentVolume {
	out := pv.DeepCopy()
	metav1.SetMetaDataAnnotation(&out.ObjectMeta, AnnRecyclingClaim, string(claimUID))
	metav1.SetMetaDataAnnotation(&out.ObjectMeta, AnnRecyclingHolder, holder)
	metav1.SetMetaDataAnnotation(&out.ObjectMeta, AnnRecyclingExpires, expires.UTC().Format(time.RFC3339Nano))
	return out
}

// withoutLease returns a copy of pv with nobody holding its lease. The
// claim marker stays while the PV is still released by that claim, so that
// the next recycler knows it resumes an unfinished scrub.
func withoutLease(pv *v1.PersistentVolume) *v1.PersistentVolume {
	out := pv.DeepCopy()
	delete(out.Annotations, AnnRecyclingHolder)
	delete(out.Annotations, AnnRecyclingExpires)
	if ref := out.Spec.ClaimRef; ref == nil || string(ref.UID) != out.Annotations[AnnRecyclingClaim] {
		delete(out.Annotations, AnnRecyclingClaim)
	}
	return out
}

// ownsLease reports whether pv is leased to me for scrubbing claim claimUID.
func ownsLease(pv *v1.PersistentVolume, me string, claimUID types.UID) bool {
	return pv.Annotations[AnnRecyclingHolder] == me && pv.Annotations[AnnRecyclingClaim] == string(claimUID)
}

// takeLease leases pv to this recycler. The update is conditional on the
// resourceVersion pv was read at: of two recyclers that read the same PV,
// one gets a conflict, and if anyone changed the PV since it was read,
// nothing is taken and the PV is looked at afresh.
func (r *Recycler) takeLease(ctx context.Context, pv *v1.PersistentVolume) (*v1.PersistentVolume, error) {
	leased := withLease(pv, r.cfg.Identity, pv.Spec.ClaimRef.UID, time.Now().Add(r.cfg.LeaseDuration))
	out, err := r.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, leased, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("take the recycling lease on PV %s: %w", pv.Name, err)
	}
	return out, nil
}

// dropLease gives up this recycler's lease on PV name after a failed or
// stopped scrub, so that the next attempt (ours or another recycler's) need
// not wait for it to expire. Best effort: it runs even when ctx is done
// (shutdown is when a hand-over matters most), briefly, and leaves
// alone a lease that is no longer ours.
func (r *Recycler) dropLease(ctx context.Context, name string, claimUID types.UID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	pvs := r.cfg.Client.CoreV1().PersistentVolumes()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := pvs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !ownsLease(pv, r.cfg.Identity, claimUID) {
			return nil
		}
		_, err = pvs.Update(ctx, withoutLease(pv), metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "Could not drop the recycling lease; it runs out by itself",
			"pv", name, "leaseDuration", r.cfg.LeaseDuration)
	}
}

// defaultIdentity tells this process apart from every other recycler, also
// from an earlier run of itself on the same host with the same pid (a
// restarted container), whose lease must not be mistaken for its own.
func defaultIdentity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomSuffix())
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
