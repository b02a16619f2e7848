// Package resizer grows Stowage volumes when their claims ask for more: it
// does in-process what the external-resizer sidecar does for other CSI
// drivers (that image cannot be fetched where Stowage is built), with the
// same API protocol, so that kubelet, kubectl and the PV controller see what
// they expect. It runs beside the provisioner, in the component that owns the
// volume: the node plugin for its node's local volumes, the elected
// controller for NFS volumes.
package resizer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
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

// Expander is the one CSI call the resizer makes; csi.ControllerServer has it.
type Expander interface {
	ControllerExpandVolume(context.Context, *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error)
}

var _ Expander = csi.ControllerServer(nil)

// Config says which volumes a Resizer grows and how it reaches them.
type Config struct {
	// DriverName: only PVs whose spec.csi.driver is this are touched.
	DriverName string
	Expander   Expander
	Client     kubernetes.Interface
	// Owns says whether this instance grows the volume of this PV: a node
	// its own local volumes, the controller the NFS ones.
	Owns func(*v1.PersistentVolume) bool
	// Recorder records Resizing, VolumeResizeSuccessful and VolumeResizeFailed on claims.
	Recorder record.EventRecorder
	// Workers is how many claims are resized at once; 0 means 4.
	Workers int
	// Timeout bounds one ControllerExpandVolume call; 0 means 2 minutes.
	Timeout time.Duration
	// RetryBase and RetryMax bound the exponential backoff after a failure
	// that may pass (the driver busy, the API server unreachable); 0 means
	// 1 second and 5 minutes.
	RetryBase, RetryMax time.Duration
}

// Resizer grows the volumes of claims whose request exceeds their capacity.
type Resizer struct {
	cfg     Config
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// New checks cfg and registers the resizer's handlers on factory's claim,
// PV and StorageClass informers; the caller starts the factory afterwards.
func New(cfg Config, factory informers.SharedInformerFactory) (*Resizer, error) {
	switch {
	case cfg.DriverName == "":
		return nil, errors.New("resizer: DriverName is empty")
	case cfg.Expander == nil:
		return nil, errors.New("resizer: Expander is nil")
	case cfg.Client == nil:
		return nil, errors.New("resizer: Client is nil")
	case cfg.Owns == nil:
		return nil, errors.New("resizer: Owns is nil")
	case cfg.Recorder == nil:
		return nil, errors.New("resizer: Recorder is nil")
	case factory == nil:
		return nil, errors.New("resizer: informer factory is nil")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Minute
	}
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	r := &Resizer{
		cfg:     cfg,
		claims:  claims.Lister(),
		volumes: volumes.Lister(),
		classes: classes.Lister(),
		synced:  []cache.InformerSynced{claims.Informer().HasSynced, volumes.Informer().HasSynced, classes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryBase, cfg.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "resizer"}),
	}
	_, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.enqueue,
		UpdateFunc: func(_, obj interface{}) { r.enqueue(obj) },
		DeleteFunc: r.forget,
	})
	if err != nil {
		return nil, fmt.Errorf("resizer: watch claims: %w", err)
	}
	return r, nil
}

// enqueue queues only claims that may need work, so that the queue stays
// empty in a cluster full of claims that have what they asked for. The
// informer's periodic resync brings every claim back here, which is how an
// infeasible resize is looked at again after its user changed nothing.
func (r *Resizer) enqueue(obj interface{}) {
	pvc, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok || !wantsAttention(pvc) {
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(pvc)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	r.queue.Add(key)
}

// forget drops the backoff of a deleted claim.
func (r *Resizer) forget(obj interface{}) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err == nil {
		r.queue.Forget(key)
	}
}

// Run resizes claims until ctx is done.
func (r *Resizer) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer r.queue.ShutDown()
	logger := klog.FromContext(ctx).WithName("resizer")
	ctx = klog.NewContext(ctx, logger)
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return
	}
	logger.Info("Started resizer", "driver", r.cfg.DriverName, "workers", r.cfg.Workers)
	for i := 0; i < r.cfg.Workers; i++ {
		go wait.UntilWithContext(ctx, r.worker, time.Second)
	}
	<-ctx.Done()
}

func (r *Resizer) worker(ctx context.Context) {
	for {
		key, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		if err := r.sync(ctx, key); err != nil {
			klog.FromContext(ctx).Error(err, "Resize failed, will retry", "claim", key)
			r.queue.AddRateLimited(key)
		} else {
			r.queue.Forget(key)
		}
		r.queue.Done(key)
	}
}
