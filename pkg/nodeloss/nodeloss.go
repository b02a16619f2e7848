// Package nodeloss looks after the local volumes of nodes that are gone for
// good: a Node object deleted, or tainted node.kubernetes.io/out-of-service.
// Their data cannot be reached and the node plugin that would delete them
// is not coming back, so nobody removes the provisioner's finalizer. The
// elected controller marks their PVs (annotation stowage.io/node-gone and
// an event), tells the claims that still hold one, and — opt-in, after a
// delay — writes off the released ones: finalizer removed, PV deleted. It
// also drops a claim's selected-node when that node no longer exists, so
// that the scheduler picks another instead of waiting forever. A node that
// comes back has its PVs unmarked; its node plugin's orphan reconciler then
// finds the directories whose PVs were written off.
package nodeloss

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Config says whose volumes the controller looks after and what it may do.
type Config struct {
	// DriverName: only local PVs and claims of this driver are touched.
	DriverName string
	Client     kubernetes.Interface
	// Recorder records NodeGone, VolumeWrittenOff and SelectedNodeGone.
	Recorder record.EventRecorder
	// ReleaseAfter, if positive, writes off a released PV this long after
	// its node was seen gone; 0 only marks and reports.
	ReleaseAfter time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Index names.
const (
	byNode         = "stowage-nodeloss-node"
	bySelectedNode = "stowage-nodeloss-selected-node"
)

// Controller is the node-loss companion. Its work queue holds node names:
// everything about one node (its PVs, the claims waiting for it) is looked
// at together, so that one decision about the node applies to all of them.
type Controller struct {
	cfg     Config
	nodes   corelisters.NodeLister
	pvs     cache.Indexer // PVs by byNode
	claims  cache.Indexer // claims by bySelectedNode
	classes storagelisters.StorageClassLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// New checks cfg and registers the controller's handlers and indexes on
// factory's informers; the caller starts the factory afterwards.
func New(cfg Config, factory informers.SharedInformerFactory) (*Controller, error) {
	switch {
	case cfg.DriverName == "":
		return nil, errors.New("nodeloss: DriverName is empty")
	case cfg.Client == nil:
		return nil, errors.New("nodeloss: Client is nil")
	case cfg.Recorder == nil:
		return nil, errors.New("nodeloss: Recorder is nil")
	case cfg.ReleaseAfter < 0:
		return nil, errors.New("nodeloss: ReleaseAfter is negative")
	case factory == nil:
		return nil, errors.New("nodeloss: informer factory is nil")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	nodes := factory.Core().V1().Nodes()
	pvs := factory.Core().V1().PersistentVolumes().Informer()
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	classes := factory.Storage().V1().StorageClasses()
	c := &Controller{
		cfg: cfg, nodes: nodes.Lister(), pvs: pvs.GetIndexer(), claims: claims.GetIndexer(), classes: classes.Lister(),
		synced: []cache.InformerSynced{nodes.Informer().HasSynced, pvs.HasSynced, claims.HasSynced, classes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodeloss"}),
	}
	if err := pvs.AddIndexers(cache.Indexers{byNode: c.pvNode}); err != nil {
		return nil, fmt.Errorf("nodeloss: index PVs by node: %w", err)
	}
	if err := claims.AddIndexers(cache.Indexers{bySelectedNode: selectedNode}); err != nil {
		return nil, fmt.Errorf("nodeloss: index claims by selected node: %w", err)
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		key func(any) string
	}{
		{nodes.Informer(), c.nodeKey}, {pvs, c.pvKey}, {claims, c.claimKey},
	}
	for _, h := range handlers {
		key := h.key
		_, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.enqueue(key(obj)) },
			UpdateFunc: func(_, obj any) { c.enqueue(key(obj)) },
			DeleteFunc: func(obj any) {
				if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = d.Obj
				}
				c.enqueue(key(obj))
			},
		})
		if err != nil {
			return nil, fmt.Errorf("nodeloss: watch: %w", err)
		}
	}
	return c, nil
}

func (c *Controller) pvNode(obj any) ([]string, error) {
	if pv, ok := obj.(*v1.PersistentVolume); ok {
		if n := LocalNode(c.cfg.DriverName, pv); n != "" {
			return []string{n}, nil
		}
	}
	return nil, nil
}

func selectedNode(obj any) ([]string, error) {
	if claim, ok := obj.(*v1.PersistentVolumeClaim); ok && claim.Spec.VolumeName == "" {
		if n := claim.Annotations[annSelectedNode]; n != "" {
			return []string{n}, nil
		}
	}
	return nil, nil
}

// nodeKey: every node event is looked at; the sync of a healthy node with
// no marked PVs reads only the caches.
func (c *Controller) nodeKey(obj any) string {
	if n, ok := obj.(*v1.Node); ok {
		return n.Name
	}
	return ""
}

// pvKey queues a PV's node only when there may be something to do: the PV
// is marked, or its node is not there or not well. The queue stays empty
// in a cluster where every node is fine.
func (c *Controller) pvKey(obj any) string {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok {
		return ""
	}
	node := LocalNode(c.cfg.DriverName, pv)
	if node == "" {
		return ""
	}
	if _, marked := pv.Annotations[AnnNodeGone]; marked || c.cachedGone(node) {
		return node
	}
	return ""
}

func (c *Controller) claimKey(obj any) string {
	keys, _ := selectedNode(obj)
	if len(keys) == 1 && c.cachedGone(keys[0]) {
		return keys[0]
	}
	return ""
}

// cachedGone is NodeGone on the cache (a node not yet in the cache counts as
// gone here: the sync looks again, with the API server's word).
func (c *Controller) cachedGone(name string) bool {
	n, err := c.nodes.Get(name)
	if err != nil {
		return true
	}
	gone, _ := NodeGone(n)
	return gone
}

func (c *Controller) enqueue(node string) {
	if node != "" {
		c.queue.Add(node)
	}
}

// Run works until ctx is done.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx).WithName("nodeloss")
	ctx = klog.NewContext(ctx, logger)
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return
	}
	logger.Info("Started node-loss controller", "driver", c.cfg.DriverName, "releaseAfter", c.cfg.ReleaseAfter)
	for range 2 {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
}

func (c *Controller) worker(ctx context.Context) {
	for {
		node, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		again, err := c.sync(ctx, node)
		switch {
		case err != nil:
			klog.FromContext(ctx).Error(err, "Node-loss sync failed, will retry", "node", node)
			c.queue.AddRateLimited(node)
		case again > 0:
			c.queue.Forget(node)
			c.queue.AddAfter(node, again)
		default:
			c.queue.Forget(node)
		}
		c.queue.Done(node)
	}
}
