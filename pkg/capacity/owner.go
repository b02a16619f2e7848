package capacity

import (
	"context"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// NodeOwner makes the node plugin's objects belong to its Node: when the
// node is deleted, the garbage collector deletes its capacity with it.
func NodeOwner(client kubernetes.Interface, node string) OwnerFinder {
	return func(ctx context.Context) (*metav1.OwnerReference, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("read Node %s (the owner of its capacity objects): %w", node, err)
		}
		return ref(v1.SchemeGroupVersion.WithKind("Node"), &n.ObjectMeta), nil
	}
}

// DeploymentOwner makes the controller's objects belong to its Deployment,
// found from the pod (pod → ReplicaSet → Deployment), so that uninstalling
// Stowage removes them. Not running in such a pod (no pod name, the pod is
// gone, no Deployment above it) means no owner.
func DeploymentOwner(client kubernetes.Interface, namespace, pod string) OwnerFinder {
	return func(ctx context.Context) (*metav1.OwnerReference, error) {
		if namespace == "" || pod == "" {
			return nil, nil
		}
		p, err := client.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read pod %s/%s to find its Deployment: %w", namespace, pod, err)
		}
		rsRef := metav1.GetControllerOf(p)
		if rsRef == nil || rsRef.Kind != "ReplicaSet" {
			return nil, nil
		}
		rs, err := client.AppsV1().ReplicaSets(namespace).Get(ctx, rsRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read ReplicaSet %s/%s to find its Deployment: %w", namespace, rsRef.Name, err)
		}
		dRef := metav1.GetControllerOf(rs)
		if dRef == nil || dRef.Kind != "Deployment" {
			return nil, nil
		}
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, dRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read Deployment %s/%s: %w", namespace, dRef.Name, err)
		}
		return ref(appsv1.SchemeGroupVersion.WithKind("Deployment"), &d.ObjectMeta), nil
	}
}

// ref is a plain owner reference: no controller flag (nothing else may
// claim the object anyway) and no blockOwnerDeletion, which would need the
// right to delete the owner.
func ref(gvk schema.GroupVersionKind, m *metav1.ObjectMeta) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: m.Name, UID: m.UID}
}

// ownerCache asks the finder once, and again after forget (an object of
// ours was deleted: perhaps because its owner went).
type ownerCache struct {
	mu    sync.Mutex
	known bool
	ref   *metav1.OwnerReference
}

// get returns the owner (nil: none). An error means the owner could not be
// read; the caller publishes nothing then rather than an object that no
// owner would ever take away.
func (c *ownerCache) get(ctx context.Context, find OwnerFinder) (*metav1.OwnerReference, error) {
	if find == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known {
		return c.ref, nil
	}
	r, err := find(ctx)
	if err != nil {
		return nil, err
	}
	c.known, c.ref = true, r
	return r, nil
}

func (c *ownerCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.known = false
}
