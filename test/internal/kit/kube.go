package kit

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Kube is one test's view of a cluster: the client it talks through and the namespace its claims
// (and their events) live in. Copy it freely; For and In give copies for a subtest or another
// namespace.
type Kube struct {
	Waiter
	Client kubernetes.Interface
	NS     string
}

// For is k for a subtest: failures end t, not the test k was made for.
func (k Kube) For(t testing.TB) Kube {
	k.T = t
	return k
}

// In is k for the claims of namespace ns.
func (k Kube) In(ns string) Kube {
	k.NS = ns
	return k
}

// GetClaim reads claim name of k.NS.
func (k Kube) GetClaim(name string) (*v1.PersistentVolumeClaim, error) {
	return k.Client.CoreV1().PersistentVolumeClaims(k.NS).Get(context.Background(), name, metav1.GetOptions{})
}

// GetPV reads PV name.
func (k Kube) GetPV(name string) (*v1.PersistentVolume, error) {
	return k.Client.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
}

// PV reads PV name and fails the test when it cannot.
func (k Kube) PV(name string) *v1.PersistentVolume {
	k.T.Helper()
	pv, err := k.GetPV(name)
	if err != nil {
		k.T.Fatalf("read PV %s: %v", name, err)
	}
	return pv
}

// WaitBound waits until claim is Bound and returns its PV.
func (k Kube) WaitBound(claim string) *v1.PersistentVolume {
	k.T.Helper()
	var volume string
	k.Eventually("claim "+k.NS+"/"+claim+" Bound", func(ctx context.Context) (bool, error) {
		pvc, err := k.Client.CoreV1().PersistentVolumeClaims(k.NS).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		volume = pvc.Spec.VolumeName
		if pvc.Status.Phase != v1.ClaimBound {
			return false, fmt.Errorf("phase %s, events: %s", pvc.Status.Phase, k.EventsOf("PersistentVolumeClaim", claim))
		}
		return true, nil
	})
	pv, err := k.GetPV(volume)
	if err != nil {
		k.T.Fatalf("claim %s/%s is Bound to PV %q, which cannot be read: %v", k.NS, claim, volume, err)
	}
	return pv
}

// WaitPVPhase waits until PV name is in phase and returns it.
func (k Kube) WaitPVPhase(name string, phase v1.PersistentVolumePhase) *v1.PersistentVolume {
	k.T.Helper()
	var pv *v1.PersistentVolume
	k.Eventually("PV "+name+" "+string(phase), func(ctx context.Context) (bool, error) {
		p, err := k.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pv = p
		if p.Status.Phase != phase {
			return false, fmt.Errorf("phase %s %q, events: %s", p.Status.Phase, p.Status.Message, k.EventsOf("PersistentVolume", name))
		}
		return true, nil
	})
	return pv
}

// WaitPVGone waits until PV name no longer exists: the provisioner has deleted it, and with it
// the volume, or its finalizer has let it go.
func (k Kube) WaitPVGone(name string) {
	k.T.Helper()
	k.Eventually("PV "+name+" gone", func(ctx context.Context) (bool, error) {
		pv, err := k.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return apierrors.IsNotFound(err), err
		}
		return false, fmt.Errorf("phase %s, finalizers %v, events: %s", pv.Status.Phase, pv.Finalizers, k.EventsOf("PersistentVolume", name))
	})
}

// DeleteClaim deletes claim name of k.NS and waits until it is gone.
func (k Kube) DeleteClaim(name string) {
	k.T.Helper()
	if err := k.Client.CoreV1().PersistentVolumeClaims(k.NS).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		k.T.Fatalf("delete claim %s/%s: %v", k.NS, name, err)
	}
	k.WaitGone("claim "+k.NS+"/"+name, func(ctx context.Context) error {
		_, err := k.Client.CoreV1().PersistentVolumeClaims(k.NS).Get(ctx, name, metav1.GetOptions{})
		return err
	})
}
