// Package kit holds the helpers that the integration tier (test/integration) and the e2e tier
// (test/e2e) share: waiting for claims, PVs and events through a Kubernetes client, with one
// signature each.
//
// Two values carry what every helper needs, so call sites stay short:
//
//	w := kit.Waiter{T: t, Timeout: 90 * time.Second, Poll: 200 * time.Millisecond}
//	w.Eventually("the lease taken", func(ctx context.Context) (bool, error) { ... })
//
//	k := kit.Kube{Waiter: w, Client: client, NS: "team-a"}
//	pv := k.WaitBound("data")
//	k.DeleteClaim("data")
//	k.WaitPVPhase(pv.Name, v1.VolumeReleased)
//	k.WaitEvent("PersistentVolume", pv.Name, "VolumeRecycled")
//
// Timeouts only keep a broken cluster from hanging a run; no helper measures speed.
package kit

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Used when a Waiter leaves Timeout or Poll at zero.
const (
	DefaultTimeout = 2 * time.Minute
	DefaultPoll    = time.Second
)

// Waiter polls for something a test expects to happen, and fails the test with the last thing
// it saw when it does not happen in time.
type Waiter struct {
	T       testing.TB
	Timeout time.Duration // how long a wait may take before the test fails; 0 means DefaultTimeout
	Poll    time.Duration // how often a wait looks again; 0 means DefaultPoll
}

// Within is w with another timeout, for the one wait that needs it.
func (w Waiter) Within(timeout time.Duration) Waiter {
	w.Timeout = timeout
	return w
}

func (w Waiter) timeout() time.Duration {
	if w.Timeout <= 0 {
		return DefaultTimeout
	}
	return w.Timeout
}

func (w Waiter) poll() time.Duration {
	if w.Poll <= 0 {
		return DefaultPoll
	}
	return w.Poll
}

// Eventually calls cond at once and then every Poll until it reports done. A non-nil error from
// cond does not stop the wait: it says what cond saw instead, and the last one is part of the
// failure message when Timeout passes. what names the awaited thing for that message.
func (w Waiter) Eventually(what string, cond func(ctx context.Context) (done bool, err error)) {
	w.T.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), w.poll(), w.timeout(), true, func(ctx context.Context) (bool, error) {
		done, err := cond(ctx)
		if err != nil && ctx.Err() == nil {
			// An error from a call the timeout itself cancelled says nothing about the state.
			last = err
		}
		return done, nil
	})
	if err != nil {
		w.T.Fatalf("gave up after %v waiting for %s; last seen: %v", w.timeout(), what, last)
	}
}

// WaitGone waits until get answers NotFound; any other answer is what the failure reports.
func (w Waiter) WaitGone(what string, get func(ctx context.Context) error) {
	w.T.Helper()
	w.Eventually(what+" gone", func(ctx context.Context) (bool, error) {
		err := get(ctx)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err == nil {
			return false, errors.New("still there")
		}
		return false, err
	})
}
