// Package capacity publishes CSIStorageCapacity objects (storage.k8s.io/v1)
// for the StorageClasses of the driver, so that the scheduler does not place
// a pod with a fresh WaitForFirstConsumer claim on a node that cannot hold
// it. The node plugin publishes one object per local class for its own node;
// the controller one per NFS class, visible from every node. The numbers are
// the driver's own GetCapacity answer for the class's parameters and the
// segment's topology.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	storageinformers "k8s.io/client-go/informers/storage/v1"
	"k8s.io/client-go/kubernetes"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// DefaultInterval is how often every object is recomputed without an event.
// Stowage's own writes (a volume made, deleted or grown) trigger a refresh
// at once through the PV informer, so polling only catches what Stowage
// cannot see: other data written to the same filesystem or share. A minute
// keeps that lag small while costing one statfs and one record listing per
// class and minute; the driver refuses to over-commit anyway, so a stale
// number costs a reschedule, never a broken volume.
const DefaultInterval = time.Minute

// debounce gathers a burst of volume events (a bulk of claims provisioned)
// into one refresh per class.
const debounce = time.Second

// Getter is the driver's CSI GetCapacity, called in-process.
type Getter interface {
	GetCapacity(context.Context, *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error)
}

// OwnerFinder names the object that owns the published objects, so that
// Kubernetes garbage-collects them with it. It returns nil, nil when there
// is no owner to name, and an error when it could not tell (retried).
type OwnerFinder func(ctx context.Context) (*metav1.OwnerReference, error)

// Config is what a publisher needs.
type Config struct {
	DriverName string
	// Backend is the kind whose classes this instance publishes:
	// volumeid.Local in the node plugin, volumeid.NFS in the controller.
	Backend string
	// NodeName (local) is the node whose capacity is published.
	NodeName string
	// Namespace holds the objects (CSIStorageCapacity is namespaced; the
	// scheduler reads every namespace): the release namespace.
	Namespace string
	Client    kubernetes.Interface
	Capacity  Getter
	Owner     OwnerFinder   // nil: objects have no owner
	Interval  time.Duration // 0: DefaultInterval
}

func (c *Config) check() error {
	switch {
	case c.DriverName == "" || c.Client == nil || c.Capacity == nil:
		return errors.New("capacity: DriverName, Client and Capacity must be set")
	case c.Namespace == "":
		return errors.New("capacity: no namespace for the CSIStorageCapacity objects; set $POD_NAMESPACE (the chart does)")
	case c.Backend == volumeid.Local && c.NodeName == "":
		return errors.New("capacity: the local backend needs the node name")
	case c.Backend != volumeid.Local && c.Backend != volumeid.NFS:
		return fmt.Errorf("capacity: backend %q is not local or nfs", c.Backend)
	case c.Interval < 0:
		return fmt.Errorf("capacity: negative interval %s", c.Interval)
	}
	return nil
}

// Publisher keeps the CSIStorageCapacity objects of one instance current.
type Publisher struct {
	cfg  Config
	who  publisher
	poke chan struct{}

	classes storagelisters.StorageClassLister
	objects cache.SharedIndexInformer // our own objects only (label selector)
	events  record.EventRecorder
	queue   workqueue.TypedRateLimitingInterface[string] // class names

	owner ownerCache

	volumesMu sync.Mutex
	volumes   map[types.UID]bool // our PVs seen so far
}

// New checks cfg and returns a publisher that does nothing until Start.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	return &Publisher{cfg: cfg, who: newPublisher(cfg), poke: make(chan struct{}, 1), volumes: map[types.UID]bool{}}, nil
}

// Trigger asks for every object to be recomputed soon (within about a
// second; calls in a burst are merged). Safe to call at any time, from any
// goroutine, before Start too; it never blocks.
func (p *Publisher) Trigger() {
	select {
	case p.poke <- struct{}{}:
	default: // one is already pending
	}
}

// Start has the signature of provisioner.Companion: it asks factory for the
// StorageClass and PV informers, makes its own informer for the objects it
// publishes, and returns the loop that keeps them current.
func (p *Publisher) Start(_ context.Context, factory informers.SharedInformerFactory, events record.EventRecorder) (func(context.Context), error) {
	p.events = events
	p.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "capacity"})
	classes := factory.Storage().V1().StorageClasses()
	p.classes = classes.Lister()
	volumes := factory.Core().V1().PersistentVolumes().Informer()
	p.objects = storageinformers.NewFilteredCSIStorageCapacityInformer(p.cfg.Client, p.cfg.Namespace, 0,
		cache.Indexers{byClass: indexByClass},
		func(o *metav1.ListOptions) { o.LabelSelector = p.who.selector() })

	handlers := []struct {
		informer cache.SharedIndexInformer
		h        cache.ResourceEventHandler
	}{
		{classes.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    p.classChanged,
			UpdateFunc: func(_, o any) { p.classChanged(o) },
			DeleteFunc: p.classChanged,
		}},
		// Not on update: our own updates would trigger a sync, which would
		// update again whenever the free space moved meanwhile, in a loop.
		// Someone else's edit is undone by the next poll.
		{p.objects, cache.ResourceEventHandlerFuncs{
			AddFunc:    p.objectChanged,
			DeleteFunc: p.objectDeleted,
		}},
		{volumes, cache.ResourceEventHandlerFuncs{
			AddFunc: func(o any) { p.volumeChanged(o, false) },
			UpdateFunc: func(old, o any) {
				p.volumeChanged(o, sizeChanged(old, o))
			},
			DeleteFunc: p.volumeGone,
		}},
	}
	var synced []cache.InformerSynced
	for _, x := range handlers {
		reg, err := x.informer.AddEventHandler(x.h)
		if err != nil {
			return nil, fmt.Errorf("capacity: informer handler: %w", err)
		}
		synced = append(synced, reg.HasSynced)
	}
	return func(ctx context.Context) { p.run(ctx, synced) }, nil
}

// run works until ctx is done.
func (p *Publisher) run(ctx context.Context, synced []cache.InformerSynced) {
	logger := klog.FromContext(ctx).WithName("capacity")
	ctx = klog.NewContext(ctx, logger)
	defer p.queue.ShutDown()
	go p.objects.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	logger.Info("Publishing CSIStorageCapacity", "backend", p.cfg.Backend, "namespace", p.cfg.Namespace,
		"publisher", p.who.id, "interval", p.cfg.Interval)
	go p.tick(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for p.next(ctx) {
		}
	}()
	<-ctx.Done()
	p.queue.ShutDown()
	wg.Wait()
}

// tick refreshes everything every interval, and soon after Trigger.
func (p *Publisher) tick(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.enqueueAll(0)
		case <-p.poke:
			p.enqueueAll(debounce)
		}
	}
}

// next syncs one class; false once the queue is shut down.
func (p *Publisher) next(ctx context.Context) bool {
	class, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(class)
	if err := p.sync(ctx, class); err != nil {
		klog.FromContext(ctx).Error(err, "Publishing capacity failed; retrying", "storageClass", class)
		p.queue.AddRateLimited(class)
		return true
	}
	p.queue.Forget(class)
	return true
}

// enqueueAll queues every class of the driver and every class one of our
// objects names (so that objects of deleted classes go too).
func (p *Publisher) enqueueAll(after time.Duration) {
	add := func(name string) {
		if after == 0 {
			p.queue.Add(name)
		} else {
			p.queue.AddAfter(name, after)
		}
	}
	if list, err := p.classes.List(everything); err == nil {
		for _, sc := range list {
			if sc.Provisioner == p.cfg.DriverName {
				add(sc.Name)
			}
		}
	}
	for _, o := range p.objects.GetStore().List() {
		add(o.(*storagev1.CSIStorageCapacity).StorageClassName)
	}
}

func (p *Publisher) classChanged(obj any) {
	if sc, ok := unwrap[*storagev1.StorageClass](obj); ok && sc.Provisioner == p.cfg.DriverName {
		p.queue.Add(sc.Name)
	}
}

func (p *Publisher) objectChanged(obj any) {
	if o, ok := unwrap[*storagev1.CSIStorageCapacity](obj); ok {
		p.queue.Add(o.StorageClassName)
	}
}

// objectDeleted re-creates the object. If its owner is what went (a Node
// deleted and registered again under a new UID), the owner is looked up
// afresh; otherwise the garbage collector would take the new object too.
func (p *Publisher) objectDeleted(obj any) {
	p.owner.forget()
	p.objectChanged(obj)
}

// volumeChanged refreshes after a volume of this instance was made or
// grown: what the others may still take changed. A volume counts as made
// the first time any event shows it, not on Add only: the provisioner
// library puts a PV it has just created into the shared informer's store
// itself, so the informer may never report it as added.
func (p *Publisher) volumeChanged(obj any, grown bool) {
	pv, ok := p.ourVolume(obj)
	if !ok {
		return
	}
	p.volumesMu.Lock()
	fresh := !p.volumes[pv.UID]
	p.volumes[pv.UID] = true
	p.volumesMu.Unlock()
	if fresh || grown {
		p.Trigger()
	}
}

// volumeGone refreshes after a volume of this instance was deleted.
func (p *Publisher) volumeGone(obj any) {
	pv, ok := p.ourVolume(obj)
	if !ok {
		return
	}
	p.volumesMu.Lock()
	delete(p.volumes, pv.UID)
	p.volumesMu.Unlock()
	p.Trigger()
}

// ourVolume: a PV of this driver whose volume this instance made (its backend,
// and for local volumes its node).
func (p *Publisher) ourVolume(obj any) (*v1.PersistentVolume, bool) {
	pv, ok := unwrap[*v1.PersistentVolume](obj)
	if !ok || pv.Spec.CSI == nil || pv.Spec.CSI.Driver != p.cfg.DriverName {
		return nil, false
	}
	id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
	if err != nil || id.Backend != p.cfg.Backend || (id.Backend == volumeid.Local && id.Node != p.cfg.NodeName) {
		return nil, false
	}
	return pv, true
}

func sizeChanged(old, cur any) bool {
	a, ok1 := old.(*v1.PersistentVolume)
	b, ok2 := cur.(*v1.PersistentVolume)
	if !ok1 || !ok2 {
		return true
	}
	return !a.Spec.Capacity.Storage().Equal(*b.Spec.Capacity.Storage())
}

// unwrap takes an informer's object, or the last state of a deleted one.
func unwrap[T any](obj any) (T, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	t, ok := obj.(T)
	return t, ok
}
