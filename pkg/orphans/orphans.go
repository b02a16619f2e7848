// Package orphans finds volumes that no PersistentVolume uses: a record and
// its directory left on a storage root, typically by a provisioner killed
// after CreateVolume whose claim was deleted before it restarted (the
// library then never learns of the volume). It runs beside the provisioner,
// in the instance that owns the root: the node plugin for its own base
// path, the elected controller for the NFS shares of the driver's classes.
// It reports by default; removal of old orphans is opt-in and goes through
// the driver's DeleteVolume, so every ownership rule applies.
package orphans

import (
	"context"
	"errors"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/metrics"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Defaults of the flags.
const (
	DefaultInterval  = 10 * time.Minute
	DefaultGrace     = 10 * time.Minute
	DefaultFirstPass = time.Minute
)

// Event reasons.
const (
	ReasonOrphaned      = "OrphanedVolume"
	ReasonRemoved       = "OrphanedVolumeRemoved"
	ReasonRemovalFailed = "OrphanedVolumeRemovalFailed"
)

// Volumes is what the reconciler asks of the driver.
type Volumes interface {
	StoredVolumes(ctx context.Context, root volumeid.ID) ([]driver.StoredVolume, error)
	DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error)
}

var _ Volumes = (*driver.Driver)(nil)

// Config says which roots a Reconciler looks at and what it does.
type Config struct {
	DriverName string
	Volumes    Volumes
	Client     kubernetes.Interface
	// Node, if set, makes this the node plugin's reconciler: it looks at
	// the node's own base path, and its events go to the Node. Otherwise it
	// looks at the NFS shares of the driver's classes, with events on the
	// class an orphan was made from.
	Node     string
	Recorder record.EventRecorder
	// Interval between passes (0: DefaultInterval); the first pass comes
	// FirstPass after the caches synced (0: the lesser of DefaultFirstPass
	// and Interval), when a provisioner that just restarted has had its
	// chance to retry what it was doing.
	Interval, FirstPass time.Duration
	// Grace: a volume younger than this is never an orphan (0: DefaultGrace).
	Grace time.Duration
	// RemoveAfter, if positive, removes orphans older than this (and than
	// Grace) through DeleteVolume; 0 only reports them.
	RemoveAfter time.Duration
}

// Reconciler compares the records on its roots with the PVs.
type Reconciler struct {
	cfg     Config
	pvs     corelisters.PersistentVolumeLister
	claims  corelisters.PersistentVolumeClaimLister
	classes storagelisters.StorageClassLister
	synced  []cache.InformerSynced
	told    map[string]bool // orphans already logged and reported by an event
}

// New checks cfg and asks factory for the informers the reconciler reads;
// the caller starts the factory.
func New(cfg Config, factory informers.SharedInformerFactory) (*Reconciler, error) {
	switch {
	case cfg.DriverName == "":
		return nil, errors.New("orphans: DriverName is empty")
	case cfg.Volumes == nil:
		return nil, errors.New("orphans: Volumes is nil")
	case cfg.Client == nil:
		return nil, errors.New("orphans: Client is nil")
	case cfg.Recorder == nil:
		return nil, errors.New("orphans: Recorder is nil")
	case cfg.Interval < 0 || cfg.FirstPass < 0 || cfg.Grace < 0 || cfg.RemoveAfter < 0:
		return nil, errors.New("orphans: a negative duration")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.FirstPass == 0 {
		cfg.FirstPass = min(DefaultFirstPass, cfg.Interval)
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	pvs := factory.Core().V1().PersistentVolumes()
	claims := factory.Core().V1().PersistentVolumeClaims()
	classes := factory.Storage().V1().StorageClasses()
	return &Reconciler{
		cfg: cfg, pvs: pvs.Lister(), claims: claims.Lister(), classes: classes.Lister(),
		synced: []cache.InformerSynced{pvs.Informer().HasSynced, claims.Informer().HasSynced, classes.Informer().HasSynced},
		told:   map[string]bool{},
	}, nil
}

// Run looks for orphans every Interval until ctx is done.
func (r *Reconciler) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer metrics.ReportOrphans(nil) // no stale numbers from a stopped reconciler
	logger := klog.FromContext(ctx).WithName("orphans")
	ctx = klog.NewContext(ctx, logger)
	if !cache.WaitForCacheSync(ctx.Done(), r.synced...) {
		return
	}
	logger.Info("Started orphan reconciler", "driver", r.cfg.DriverName, "interval", r.cfg.Interval,
		"firstPass", r.cfg.FirstPass, "grace", r.cfg.Grace, "removeAfter", r.cfg.RemoveAfter)
	select {
	case <-ctx.Done():
		return
	case <-time.After(r.cfg.FirstPass):
	}
	wait.UntilWithContext(ctx, r.Pass, r.cfg.Interval)
}
