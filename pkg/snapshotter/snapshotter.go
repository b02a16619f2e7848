// Package snapshotter cuts and deletes the snapshots that VolumeSnapshotContents
// ask for: it does in-process the job of the csi-snapshotter sidecar, with the
// same API protocol, so that the common snapshot-controller, kubectl and the
// provisioner (restores) see what they expect. It runs beside the provisioner
// in the component that owns the volume: the node plugin for its node's local
// volumes (snapshot-controller's --enable-distributed-snapshotting labels
// their contents with the node), the elected controller for NFS volumes.
package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	snapscheme "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/scheme"
	snapinformers "github.com/kubernetes-csi/external-snapshotter/client/v8/informers/externalversions"
	snaplisters "github.com/kubernetes-csi/external-snapshotter/client/v8/listers/volumesnapshot/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// The event recorders Stowage makes resolve object kinds through client-go's
// scheme; without the snapshot types there, events on contents are dropped.
func init() {
	utilruntime.Must(snapscheme.AddToScheme(scheme.Scheme))
}

// CSI is the part of the CSI controller service the snapshotter calls;
// csi.ControllerServer has it.
type CSI interface {
	CreateSnapshot(context.Context, *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error)
	DeleteSnapshot(context.Context, *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error)
	ListSnapshots(context.Context, *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error)
}

var _ CSI = csi.ControllerServer(nil)

// Config says which snapshots a Snapshotter serves and how it reaches them.
type Config struct {
	// DriverName: only contents whose spec.driver is this are touched.
	DriverName string
	CSI        CSI
	Client     snapclient.Interface
	// Owns says whether this instance serves a content, given its
	// spec.source: the volume handle of a dynamic content, the snapshot
	// handle of a pre-provisioned one.
	Owns func(handle string) bool
	// Recorder records events on contents.
	Recorder record.EventRecorder
	// NodeName (node plugins): watch only the contents labelled
	// snapshot.storage.kubernetes.io/managed-by=NodeName, as the sidecar's
	// --node-deployment does. Empty in the controller: it watches all.
	NodeName string
	// Workers is how many contents are worked on at once; 0 means 4.
	Workers int
	// Timeout bounds one CSI call; 0 means 2 minutes.
	Timeout time.Duration
	// RetryBase and RetryMax bound the backoff after a failure; 0 means 1
	// second and 5 minutes.
	RetryBase, RetryMax time.Duration
	// PollBase and PollMax bound the backoff between questions about a
	// snapshot that is not ready yet; 0 means 1 second and 30 seconds, so
	// that a finished copy is noticed soon.
	PollBase, PollMax time.Duration
	// Resync is how often every content is looked at again; 0 means 15 minutes.
	Resync time.Duration
}

// Snapshotter keeps the VolumeSnapshotContents of its volumes in step with
// the driver's snapshots.
type Snapshotter struct {
	cfg       Config
	contents  snaplisters.VolumeSnapshotContentLister
	classes   snaplisters.VolumeSnapshotClassLister
	factories []snapinformers.SharedInformerFactory
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	// polls spaces the questions about snapshots still being copied,
	// apart from the failure backoff of the queue.
	polls workqueue.TypedRateLimiter[string]
}

// New checks cfg and makes the snapshotter's informers; Run starts them.
func New(cfg Config) (*Snapshotter, error) {
	switch {
	case cfg.DriverName == "":
		return nil, errors.New("snapshotter: DriverName is empty")
	case cfg.CSI == nil:
		return nil, errors.New("snapshotter: CSI is nil")
	case cfg.Client == nil:
		return nil, errors.New("snapshotter: Client is nil")
	case cfg.Owns == nil:
		return nil, errors.New("snapshotter: Owns is nil")
	case cfg.Recorder == nil:
		return nil, errors.New("snapshotter: Recorder is nil")
	}
	setDefaults(&cfg)
	// Contents and classes need separate factories: a label filter on a
	// factory applies to every informer it makes, and classes carry no
	// node label.
	contentFactory := snapinformers.NewSharedInformerFactory(cfg.Client, cfg.Resync)
	if cfg.NodeName != "" {
		selector := labels.Set{ManagedByLabel: cfg.NodeName}.AsSelector().String()
		contentFactory = snapinformers.NewSharedInformerFactoryWithOptions(cfg.Client, cfg.Resync,
			snapinformers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	}
	classFactory := snapinformers.NewSharedInformerFactory(cfg.Client, cfg.Resync)
	contents := contentFactory.Snapshot().V1().VolumeSnapshotContents()
	classes := classFactory.Snapshot().V1().VolumeSnapshotClasses()
	s := &Snapshotter{
		cfg:       cfg,
		contents:  contents.Lister(),
		classes:   classes.Lister(),
		factories: []snapinformers.SharedInformerFactory{contentFactory, classFactory},
		synced:    []cache.InformerSynced{contents.Informer().HasSynced, classes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryBase, cfg.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "snapshotter"}),
		polls: workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.PollBase, cfg.PollMax),
	}
	_, err := contents.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: s.enqueue,
		UpdateFunc: func(old, cur interface{}) {
			o, ok1 := old.(*crdv1.VolumeSnapshotContent)
			c, ok2 := cur.(*crdv1.VolumeSnapshotContent)
			if ok1 && ok2 && worthSync(o, c) {
				s.enqueue(cur)
			}
		},
		DeleteFunc: s.forget,
	})
	if err != nil {
		return nil, fmt.Errorf("snapshotter: watch VolumeSnapshotContents: %w", err)
	}
	return s, nil
}

func setDefaults(cfg *Config) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	def(&cfg.Timeout, 2*time.Minute)
	def(&cfg.RetryBase, time.Second)
	def(&cfg.RetryMax, 5*time.Minute)
	def(&cfg.PollBase, time.Second)
	def(&cfg.PollMax, 30*time.Second)
	def(&cfg.Resync, 15*time.Minute)
}

// worthSync leaves out the updates the snapshotter causes itself (status,
// finalizers, its own annotation), which would otherwise ask the driver about
// a copy in progress at every write instead of at the poll's pace. Resyncs
// (same version), a snapshot turned ready and every other change get a look.
func worthSync(old, cur *crdv1.VolumeSnapshotContent) bool {
	if old.ResourceVersion == cur.ResourceVersion || (!isReady(old) && isReady(cur)) {
		return true
	}
	a, b := old.DeepCopy(), cur.DeepCopy()
	for _, c := range []*crdv1.VolumeSnapshotContent{a, b} {
		c.ResourceVersion, c.Status, c.ManagedFields, c.Finalizers, c.Generation = "", nil, nil, nil, 0
		delete(c.Annotations, AnnBeingCreated)
		if len(c.Annotations) == 0 {
			c.Annotations = nil
		}
	}
	return !equality.Semantic.DeepEqual(a, b)
}

func (s *Snapshotter) enqueue(obj interface{}) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	s.queue.Add(key)
}

// forget drops the backoffs of a deleted content.
func (s *Snapshotter) forget(obj interface{}) {
	if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
		s.queue.Forget(key)
		s.polls.Forget(key)
	}
}

// Run starts the informers and serves contents until ctx is done.
func (s *Snapshotter) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer s.queue.ShutDown()
	logger := klog.FromContext(ctx).WithName("snapshotter")
	ctx = klog.NewContext(ctx, logger)
	for _, f := range s.factories {
		f.Start(ctx.Done())
		defer f.Shutdown()
	}
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return
	}
	logger.Info("Started snapshotter", "driver", s.cfg.DriverName, "node", s.cfg.NodeName, "workers", s.cfg.Workers)
	for i := 0; i < s.cfg.Workers; i++ {
		go wait.UntilWithContext(ctx, s.worker, time.Second)
	}
	<-ctx.Done()
}

func (s *Snapshotter) worker(ctx context.Context) {
	for {
		key, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		s.process(ctx, key)
		s.queue.Done(key)
	}
}

// process syncs one content and schedules its next look: soon after a
// failure (with backoff), at the poll's pace while its snapshot is being
// copied, never again otherwise (until it changes or is resynced).
func (s *Snapshotter) process(ctx context.Context, key string) {
	pending, err := s.sync(ctx, key)
	switch {
	case err != nil:
		klog.FromContext(ctx).Error(err, "Snapshot sync failed, will retry", "content", key)
		s.queue.AddRateLimited(key)
	case pending:
		s.queue.Forget(key)
		s.queue.AddAfter(key, s.polls.When(key))
	default:
		s.queue.Forget(key)
		s.polls.Forget(key)
	}
}
