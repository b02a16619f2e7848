package capacity

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/params"
)

// sync makes the objects of one class match what GetCapacity says now: one
// object if the class is one of ours, none otherwise.
func (p *Publisher) sync(ctx context.Context, class string) error {
	logger := klog.FromContext(ctx).WithValues("storageClass", class)
	have, err := p.ours(class)
	if err != nil {
		return err
	}
	sc, err := p.classes.Get(class)
	if apierrors.IsNotFound(err) {
		return p.deleteAll(ctx, have, "its StorageClass is gone")
	}
	if err != nil {
		return err
	}
	if !p.serves(sc) {
		return p.deleteAll(ctx, have, "its StorageClass is not a "+p.cfg.Backend+" class of "+p.cfg.DriverName)
	}
	resp, err := p.cfg.Capacity.GetCapacity(ctx, &csi.GetCapacityRequest{
		Parameters: sc.Parameters, AccessibleTopology: p.segment(),
	})
	if status.Code(err) == codes.InvalidArgument {
		// The class cannot make volumes at all: no object is what tells the
		// scheduler that no node has room for it.
		p.events.Eventf(sc, v1.EventTypeWarning, "CapacityUnknown",
			"Stowage cannot tell this class's capacity, so the scheduler sees no room for its claims: %v. Fix the class's parameters (a class's parameters cannot be changed: create a corrected class)",
			status.Convert(err).Message())
		return p.deleteAll(ctx, have, "GetCapacity refused its parameters")
	}
	if err != nil {
		return fmt.Errorf("GetCapacity for StorageClass %s: %w", class, err)
	}
	var largest *int64
	if m := resp.GetMaximumVolumeSize(); m != nil {
		largest = &m.Value
	}
	owner, err := p.owner.get(ctx, p.cfg.Owner)
	if err != nil {
		return err
	}
	want := p.who.desired(p.cfg.Namespace, class, resp.GetAvailableCapacity(), largest, owner)

	var cur *storagev1.CSIStorageCapacity
	var extra []*storagev1.CSIStorageCapacity
	for _, o := range have {
		if o.Name == want.Name {
			cur = o
		} else {
			extra = append(extra, o) // made under another name (an older version); one is enough
		}
	}
	if err := p.deleteAll(ctx, extra, "another object says the same"); err != nil {
		return err
	}
	return p.put(klog.NewContext(ctx, logger), cur, want)
}

// put creates want, or updates cur to it if anything changed.
func (p *Publisher) put(ctx context.Context, cur, want *storagev1.CSIStorageCapacity) error {
	api := p.cfg.Client.StorageV1().CSIStorageCapacities(p.cfg.Namespace)
	if cur == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			klog.FromContext(ctx).V(2).Info("Published capacity", "object", want.Name, "now", describe(want))
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CSIStorageCapacity %s/%s: %w", p.cfg.Namespace, want.Name, err)
		}
		// Made by us a moment ago and not yet in the informer, or left
		// without our labels: take it over.
		if cur, err = api.Get(ctx, want.Name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("read CSIStorageCapacity %s/%s: %w", p.cfg.Namespace, want.Name, err)
		}
	}
	next, changed := apply(cur, want)
	if !changed {
		return nil
	}
	if _, err := api.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update CSIStorageCapacity %s/%s: %w", p.cfg.Namespace, want.Name, err)
	}
	klog.FromContext(ctx).V(4).Info("Updated capacity", "object", want.Name, "now", describe(next))
	return nil
}

func (p *Publisher) deleteAll(ctx context.Context, objs []*storagev1.CSIStorageCapacity, why string) error {
	for _, o := range objs {
		err := p.cfg.Client.StorageV1().CSIStorageCapacities(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &o.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete CSIStorageCapacity %s/%s (%s): %w", o.Namespace, o.Name, why, err)
		}
		klog.FromContext(ctx).V(2).Info("Deleted capacity", "object", o.Name, "storageClass", o.StorageClassName, "reason", why)
	}
	return nil
}

// ours lists our objects for class from the informer.
func (p *Publisher) ours(class string) ([]*storagev1.CSIStorageCapacity, error) {
	items, err := p.objects.GetIndexer().ByIndex(byClass, class)
	if err != nil {
		return nil, err
	}
	out := make([]*storagev1.CSIStorageCapacity, 0, len(items))
	for _, it := range items {
		out = append(out, it.(*storagev1.CSIStorageCapacity))
	}
	return out, nil
}

// serves: a class of this driver whose volumes this instance makes.
func (p *Publisher) serves(sc *storagev1.StorageClass) bool {
	return sc.Provisioner == p.cfg.DriverName && sc.Parameters[params.Backend] == p.cfg.Backend
}

// segment is the topology GetCapacity is asked about: this node, or (NFS)
// none, which means the share as every node sees it.
func (p *Publisher) segment() *csi.Topology {
	if p.who.node == "" {
		return nil
	}
	return &csi.Topology{Segments: map[string]string{backend.TopologyKey: p.who.node}}
}
