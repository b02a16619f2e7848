package reclaim

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func TestDecideLease(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		pv   *v1.PersistentVolume
		want leaseDecision
	}{
		{"no marker: a fresh scrub", releasedPV(nil), leaseDecision{take: true}},
		{"marker without holder (older recycler): resumed", releasedPV(func(pv *v1.PersistentVolume) {
			pv.Annotations[AnnRecyclingClaim] = "uid-old"
		}), leaseDecision{take: true, resume: true}},
		{"marker of an earlier claim, nobody holding it: a fresh scrub", releasedPV(func(pv *v1.PersistentVolume) {
			pv.Annotations[AnnRecyclingClaim] = "uid-older"
		}), leaseDecision{take: true}},
		{"our own lease: resumed", releasedPV(leasedTo(me, now.Add(time.Minute))),
			leaseDecision{take: true, resume: true}},
		{"another's live lease: wait", releasedPV(leasedTo("b", now.Add(time.Minute))),
			leaseDecision{holder: "b", expires: now.Add(time.Minute), resume: true}},
		{"another's lease ran out: taken over, resumed", releasedPV(leasedTo("b", now.Add(-time.Second))),
			leaseDecision{take: true, resume: true, holder: "b", expires: now.Add(-time.Second)}},
		{"another's lease runs out right now: taken over", releasedPV(leasedTo("b", now)),
			leaseDecision{take: true, resume: true, holder: "b", expires: now}},
		{"another's live lease for an earlier claim: wait all the same", releasedPV(func(pv *v1.PersistentVolume) {
			leasedTo("b", now.Add(time.Minute))(pv)
			pv.Annotations[AnnRecyclingClaim] = "uid-older"
		}), leaseDecision{holder: "b", expires: now.Add(time.Minute)}},
		{"another's lease with a mangled expiry: taken over", releasedPV(func(pv *v1.PersistentVolume) {
			leasedTo("b", now.Add(time.Minute))(pv)
			pv.Annotations[AnnRecyclingExpires] = "soon"
		}), leaseDecision{take: true, resume: true, holder: "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideLease(tc.pv, me, now); got != tc.want {
				t.Errorf("decideLease = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestChangeOf(t *testing.T) {
	ref := releasedPV(nil).Spec.ClaimRef
	mine := leasedTo(me, time.Now().Add(time.Minute))
	tests := []struct {
		name string
		pv   *v1.PersistentVolume
		want string // substring; "" means still ours to scrub
	}{
		{"unchanged", releasedPV(mine), ""},
		{"Released became Failed", releasedPV(all(mine, func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeFailed })), ""},
		{"lease renewed", releasedPV(leasedTo(me, time.Now().Add(time.Hour))), ""},
		{"deleted", nil, "deleted"},
		{"being deleted", releasedPV(all(mine, func(pv *v1.PersistentVolume) { pv.DeletionTimestamp = &metav1.Time{} })), "being deleted"},
		{"claimRef removed", releasedPV(all(mine, func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef = nil })), "claimRef changed"},
		{"claimRef UID changed", releasedPV(all(mine, func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef.UID = "uid-new" })), "claimRef changed"},
		{"claimRef name changed", releasedPV(all(mine, func(pv *v1.PersistentVolume) { pv.Spec.ClaimRef.Name = "other" })), "claimRef changed"},
		{"Available", releasedPV(all(mine, func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumeAvailable })), "phase changed to Available"},
		{"policy Retain", releasedPV(all(mine, func(pv *v1.PersistentVolume) {
			pv.Spec.PersistentVolumeReclaimPolicy = v1.PersistentVolumeReclaimRetain
		})), "reclaim policy changed to Retain"},
		{"lease taken", releasedPV(leasedTo("b", time.Now().Add(time.Minute))), "recycler b took over"},
		{"lease removed", releasedPV(func(pv *v1.PersistentVolume) { pv.Annotations[AnnRecyclingClaim] = "uid-old" }), "lease was removed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := changeOf(tc.pv, ref, me)
			if (got == "") != (tc.want == "") || !strings.Contains(got, tc.want) {
				t.Errorf("changeOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWithoutLease(t *testing.T) {
	leased := releasedPV(leasedTo(me, time.Now()))
	if got := withoutLease(leased).Annotations; len(got) != 1 || got[AnnRecyclingClaim] != "uid-old" {
		t.Errorf("released PV without lease has annotations %v, want only the claim marker", got)
	}
	rebound := leased.DeepCopy()
	rebound.Spec.ClaimRef = nil
	if got := withoutLease(rebound).Annotations; len(got) != 0 {
		t.Errorf("unbound PV without lease has annotations %v, want none: the marker names a claim it no longer has", got)
	}
}

func TestNewLeaseTiming(t *testing.T) {
	client := fake.NewClientset()
	base := Config{
		DriverName: driver, Scrubber: &fakeScrubber{}, Client: client, Owns: func(string) bool { return true },
		Volumes:  informers.NewSharedInformerFactory(client, 0).Core().V1().PersistentVolumes().Informer(),
		Recorder: record.NewFakeRecorder(1),
	}
	tests := []struct {
		name         string
		lease, renew time.Duration
		wantErr      bool
		wantL, wantR time.Duration
	}{
		{name: "defaults", wantL: 60 * time.Second, wantR: 20 * time.Second},
		{name: "short for tests", lease: 3 * time.Second, renew: time.Second, wantL: 3 * time.Second, wantR: time.Second},
		{name: "renewal too rare", lease: 60 * time.Second, renew: 30 * time.Second, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.LeaseDuration, cfg.RenewInterval = tc.lease, tc.renew
			r, err := New(cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New error = %v, want error: %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if r.cfg.LeaseDuration != tc.wantL || r.cfg.RenewInterval != tc.wantR {
				t.Errorf("lease %v renew %v, want %v %v", r.cfg.LeaseDuration, r.cfg.RenewInterval, tc.wantL, tc.wantR)
			}
			if r.cfg.Identity == "" {
				t.Error("no identity generated")
			}
		})
	}
	a, b := defaultIdentity(), defaultIdentity()
	if a == b {
		t.Errorf("two default identities in one process are both %q; a restarted recycler would take its predecessor's lease for its own", a)
	}
}
