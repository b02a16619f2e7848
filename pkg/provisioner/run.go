// Package provisioner turns claims of Stowage StorageClasses into PVs and
// applies the reclaim policy when they are released. It runs
// sig-storage-lib-external-provisioner's ProvisionController, which calls
// the driver's CreateVolume/DeleteVolume in-process, next to the recycler of
// package reclaim.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"

	"github.com/stowage-csi/stowage/pkg/reclaim"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Config is what the stowage binary gives the provisioner.
type Config struct {
	DriverName string               // provisioner name = driver name, e.g. csi.stowage.io
	Controller csi.ControllerServer // called in-process, no socket
	Scrubber   reclaim.Scrubber     // for Recycle
	Backend    string               // "nfs" (controller Deployment) or "local" (node DaemonSet)
	// NodeName (local): only claims whose volume.kubernetes.io/selected-node
	// is this node, only PVs of this node.
	NodeName string
	Client   kubernetes.Interface // built by the caller with QPS/burst for bulk work
	// Snapshots reads VolumeSnapshots and their contents for claims that
	// restore one; nil when snapshots are off (such claims are refused).
	Snapshots snapclient.Interface
	// LeaderElection: true in the controller Deployment, so that two
	// replicas are safe; false on nodes, which each serve their own volumes.
	LeaderElection          bool
	LeaderElectionNamespace string
	Identity                string         // lease holder identity (pod name/hostname)
	Mux                     *http.ServeMux // gets /metrics and /healthz/provisioner; may be nil
	// Companions run beside the provisioner, on its informer factory and
	// under its lease (the resizer, the capacity publisher): one owner per
	// volume for every controller of this mode. Each runs until ctx is done;
	// the informers it asks the factory for are started after all have
	// been called.
	Companions []Companion
}

// Companion is a controller that runs with the provisioner. It asks factory
// for its informers before it returns run; run is called once they are
// started and works until ctx is done.
type Companion func(ctx context.Context, factory informers.SharedInformerFactory, events record.EventRecorder) (run func(ctx context.Context), err error)

// Tuning. Provisioning is I/O-bound (API server, NFS server, disk), so more
// workers than cores pay off; the client's QPS is the real throttle.
const (
	workers        = 16
	resync         = 15 * time.Minute
	opTimeout      = 2 * time.Minute
	leaseDuration  = 15 * time.Second
	renewDeadline  = 10 * time.Second
	retryPeriod    = 2 * time.Second
	recyclers      = 4
	healthzTimeout = 20 * time.Second
)

func (c *Config) check() error {
	var missing []string
	for name, unset := range map[string]bool{
		"DriverName": c.DriverName == "", "Controller": c.Controller == nil,
		"Scrubber": c.Scrubber == nil, "Client": c.Client == nil,
	} {
		if unset {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("provisioner: %s not set", strings.Join(missing, ", "))
	}
	switch c.Backend {
	case volumeid.NFS:
	case volumeid.Local:
		if c.NodeName == "" {
			return errors.New("provisioner: the local backend needs NodeName (the node this instance serves)")
		}
		if c.LeaderElection {
			return errors.New("provisioner: the local backend runs on every node and must not elect a leader")
		}
	default:
		return fmt.Errorf("provisioner: Backend %q is not nfs or local", c.Backend)
	}
	if c.LeaderElection && c.LeaderElectionNamespace == "" {
		return errors.New("provisioner: leader election needs LeaderElectionNamespace")
	}
	return nil
}

// Run provisions and reclaims volumes until ctx is done. With leader
// election it works only while it holds the lease, and returns an error if
// it loses it, so that the process restarts and competes again cleanly.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	if cfg.Identity == "" {
		cfg.Identity, _ = os.Hostname()
	}
	logger := klog.FromContext(ctx).WithValues("backend", cfg.Backend)
	ctx = klog.NewContext(ctx, logger)
	h := &health{}
	if cfg.Mux != nil {
		cfg.Mux.Handle("/metrics", metricsHandler())
		cfg.Mux.Handle("/healthz/provisioner", h)
	}
	if !cfg.LeaderElection {
		return work(ctx, cfg, h)
	}
	return runElected(ctx, cfg, h)
}

// runElected works while this instance holds the lease.
func runElected(ctx context.Context, cfg Config, h *health) error {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, cfg.LeaderElectionNamespace,
		strings.ReplaceAll(cfg.DriverName, "/", "-"), cfg.Client.CoreV1(), cfg.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: cfg.Identity})
	if err != nil {
		return fmt.Errorf("provisioner: leader election lock: %w", err)
	}
	watchdog := leaderelection.NewLeaderHealthzAdaptor(healthzTimeout)
	h.setLeaderCheck(watchdog.Check)
	// work's result; buffered so that a work that outlives the elector
	// (the lease lost right after it was won) never blocks.
	started, done := make(chan struct{}), make(chan error, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        watchdog,
		Name:            cfg.DriverName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				klog.FromContext(ctx).Info("Became the leader; provisioning", "identity", cfg.Identity, "lease", lock.Describe())
				close(started)
				done <- work(ctx, cfg, h)
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				klog.FromContext(ctx).Info("Current provisioning leader", "identity", id)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("provisioner: leader election: %w", err)
	}
	h.setWaiting()
	elector.Run(ctx) // returns when ctx is done or the lease is lost
	select {
	case <-started:
		if err := <-done; err != nil {
			return err
		}
	default:
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("provisioner: lost the leader election lease %s; exiting so that a fresh start competes again", lock.Describe())
}

// work runs the ProvisionController and the recycler until ctx is done.
func work(ctx context.Context, cfg Config, h *health) error {
	logger := klog.FromContext(ctx)
	factory := informers.NewSharedInformerFactory(cfg.Client, resync)
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	volumes := factory.Core().V1().PersistentVolumes().Informer()
	classes := factory.Storage().V1().StorageClasses()
	classInformer := classes.Informer()
	h.setSynced(claims.HasSynced, volumes.HasSynced, classInformer.HasSynced)

	p := &provisioner{
		driverName: cfg.DriverName, backend: cfg.Backend, nodeName: cfg.NodeName,
		controller: cfg.Controller, classes: classes.Lister(),
		pvs:     corelisters.NewPersistentVolumeLister(volumes.GetIndexer()),
		sources: &sources{driverName: cfg.DriverName, kube: cfg.Client, snapshots: cfg.Snapshots},
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cfg.Client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	host := cfg.NodeName
	if host == "" {
		host = cfg.Identity
	}
	recycler, err := reclaim.New(reclaim.Config{
		DriverName: cfg.DriverName, Scrubber: sharedScrubGuard{next: cfg.Scrubber, pvs: p.pvs, driver: cfg.DriverName}, Client: cfg.Client, Volumes: volumes,
		Owns: p.Owns, Workers: recyclers,
		Recorder: broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "stowage-recycler", Host: host}),
	})
	if err != nil {
		return err
	}
	pc := controller.NewProvisionController(logger, cfg.Client, cfg.DriverName, p,
		controller.LeaderElection(false), // elected above, with our identity and a clean exit
		controller.ClaimsInformer(claims),
		controller.VolumesInformer(volumes),
		controller.ClassesInformer(classInformer),
		// The finalizer makes a PV deleted before its claim, or a restart in
		// the middle of a delete, still end with the backend volume removed.
		controller.AddFinalizer(true),
		controller.MetricsInstance(libMetrics()),
		controller.Threadiness(workers),
		controller.ProvisionTimeout(opTimeout),
		controller.DeletionTimeout(opTimeout),
		controller.ResyncPeriod(resync),
	)
	var runs []func(context.Context)
	for _, c := range cfg.Companions {
		recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "stowage", Host: host})
		run, err := c(ctx, factory, recorder)
		if err != nil {
			return err
		}
		runs = append(runs, run)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		recycler.Run(ctx)
	}()
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx)
		}()
	}
	pc.Run(ctx)
	wg.Wait()
	return nil
}

// health answers /healthz/provisioner: 200 once the caches are synced (or
// while waiting for the lease), 500 if the lease is held but not renewed.
type health struct {
	mu      sync.Mutex
	synced  []cache.InformerSynced
	leader  func(*http.Request) error
	waiting bool
}

func (h *health) setSynced(s ...cache.InformerSynced) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.synced, h.waiting = s, false
}

func (h *health) setLeaderCheck(f func(*http.Request) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leader = f
}

func (h *health) setWaiting() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.waiting = true
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	synced, leader, waiting := h.synced, h.leader, h.waiting
	h.mu.Unlock()
	if leader != nil {
		if err := leader(r); err != nil {
			http.Error(w, "leader election: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	if waiting {
		fmt.Fprintln(w, "ok: standby, waiting for the leader election lease")
		return
	}
	if synced == nil {
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	for _, s := range synced {
		if !s() {
			http.Error(w, "waiting for the claim, volume and class caches to sync", http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}
