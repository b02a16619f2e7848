package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

const driverName = "csi.stowage.io"

// peerDriverName is csi-driver-nfs's default driver name, the provisioner
// its StorageClasses name.
const peerDriverName = "nfs.csi.k8s.io"

func isPeer(mode string) bool { return mode == "peer" || mode == "peer-tuned" }

type bench struct {
	o      options
	client kubernetes.Interface
}

// setup makes the namespace and the class of this run.
func (b *bench) setup(ctx context.Context) error {
	_, err := b.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.o.namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace: %w", err)
	}
	immediate := storagev1.VolumeBindingImmediate
	del := v1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: b.o.class},
		VolumeBindingMode: &immediate,
		ReclaimPolicy:     &del,
	}
	switch {
	case b.o.mode == "floor" || b.o.mode == "seq-floor":
		sc.Provisioner = "kubernetes.io/no-provisioner"
	case isPeer(b.o.mode):
		// As csi-driver-nfs documents its class; the subDir template
		// needs external-provisioner's --extra-create-metadata, which its
		// own deployment sets.
		sc.Provisioner = peerDriverName
		sc.Parameters = map[string]string{
			"server": b.o.nfsServer, "share": b.o.nfsShare,
			"subDir": b.o.subDir + "/${pv.metadata.name}",
		}
	default:
		sc.Provisioner = driverName
		sc.Parameters = map[string]string{
			"backend": "nfs", "server": b.o.nfsServer, "share": b.o.nfsShare,
			"subDir": b.o.subDir + "/${pv.name}",
		}
	}
	_, err = b.client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create class: %w", err)
	}
	return nil
}

func (b *bench) claim(name string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.o.namespace},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: &b.o.class,
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// floorPV is a PV the PV controller can bind with no provisioner; its
// source is never mounted.
func (b *bench) floorPV(name string, claimRef *v1.ObjectReference) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			StorageClassName:              b.o.class,
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			ClaimRef:                      claimRef,
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver: "floor.bench.invalid", VolumeHandle: name,
			}},
		},
	}
}

// parallel runs fn(i) for i in [0,n) on the configured number of workers.
func (b *bench) parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, b.o.workers)
	next := make(chan int)
	for w := 0; w < b.o.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// watcher records when each claim of the namespace is first seen Bound.
type watcher struct {
	mu    sync.Mutex
	bound map[string]time.Time
	cond  *sync.Cond
}

func (b *bench) watchClaims(ctx context.Context) (*watcher, error) {
	w := &watcher{bound: map[string]time.Time{}}
	w.cond = sync.NewCond(&w.mu)
	f := informers.NewSharedInformerFactoryWithOptions(b.client, 0, informers.WithNamespace(b.o.namespace))
	inf := f.Core().V1().PersistentVolumeClaims().Informer()
	see := func(obj any) {
		c, ok := obj.(*v1.PersistentVolumeClaim)
		if !ok || c.Status.Phase != v1.ClaimBound {
			return
		}
		now := time.Now()
		w.mu.Lock()
		if _, seen := w.bound[c.Name]; !seen {
			w.bound[c.Name] = now
			w.cond.Broadcast()
		}
		w.mu.Unlock()
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: see, UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("claim informer did not sync")
	}
	go func() { <-ctx.Done(); w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() }()
	return w, nil
}

// waitFor blocks until the named claims are all Bound, or ctx ends.
func (w *watcher) waitFor(ctx context.Context, names ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		missing := 0
		for _, n := range names {
			if _, ok := w.bound[n]; !ok {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d claims not Bound: %w", missing, len(names), ctx.Err())
		}
		w.cond.Wait()
	}
}

func (w *watcher) at(name string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bound[name]
}

func claimName(i int) string { return fmt.Sprintf("claim-%05d", i) }

// bulk creates N claims at once and waits for all of them to be Bound.
func (b *bench) bulk(ctx context.Context) (*Result, error) {
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	res := &Result{}
	if b.o.mode == "floor" {
		start := time.Now()
		if err := b.parallel(b.o.n, func(i int) error {
			_, err := b.client.CoreV1().PersistentVolumes().Create(ctx, b.floorPV(fmt.Sprintf("%s-pv-%05d", b.o.namespace, i), nil), metav1.CreateOptions{})
			return err
		}); err != nil {
			return nil, fmt.Errorf("create PVs: %w", err)
		}
		if err := b.waitPVsAvailable(ctx); err != nil {
			return nil, err
		}
		res.PVCreateS = time.Since(start).Seconds()
	}
	w, err := b.watchClaims(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, b.o.n)
	created := make([]time.Time, b.o.n)
	proc := startProc(b.o.pids)
	res.LoadAvgStart = loadAvg()
	t0 := time.Now()
	if err := b.parallel(b.o.n, func(i int) error {
		names[i] = claimName(i)
		created[i] = time.Now()
		_, err := b.client.CoreV1().PersistentVolumeClaims(b.o.namespace).Create(ctx, b.claim(names[i]), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("create claims: %w", err)
	}
	if err := w.waitFor(ctx, names...); err != nil {
		return nil, err
	}
	var last time.Time
	for i, n := range names {
		at := w.at(n)
		if at.After(last) {
			last = at
		}
		res.LatenciesS = append(res.LatenciesS, at.Sub(created[i]).Seconds())
	}
	res.AllBoundS = last.Sub(t0).Seconds()
	res.Proc, res.Processes = proc.stop()
	res.Bound = len(names)
	summarize(res)
	res.Tenths, res.TailRuleOK = tailRule(res.LatenciesS, created)
	printTail(b.o.mode, b.o.n, res)
	if b.o.noDelete {
		return res, nil
	}
	if err := b.deleteAll(ctx, names, res); err != nil {
		return nil, fmt.Errorf("deletion phase: %w", err)
	}
	return res, nil
}

func (b *bench) waitPVsAvailable(ctx context.Context) error {
	for {
		list, err := b.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		avail := 0
		for _, pv := range list.Items {
			if pv.Spec.StorageClassName == b.o.class && pv.Status.Phase == v1.VolumeAvailable {
				avail++
			}
		}
		if avail >= b.o.n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d PVs Available: %w", avail, b.o.n, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// sequential creates one claim at a time, each after the previous is Bound.
func (b *bench) sequential(ctx context.Context) (*Result, error) {
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	w, err := b.watchClaims(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	proc := startProc(b.o.pids)
	t0 := time.Now()
	for i := 0; i < b.o.n; i++ {
		name := claimName(i)
		start := time.Now()
		c, err := b.client.CoreV1().PersistentVolumeClaims(b.o.namespace).Create(ctx, b.claim(name), metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		if b.o.mode == "seq-floor" {
			// With the claim's UID, as a provisioner writes it: the PV
			// controller then syncs the claim at once (without it, it waits
			// for its 15 s resync).
			ref := &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: b.o.namespace, Name: name, UID: c.UID}
			if _, err := b.client.CoreV1().PersistentVolumes().Create(ctx, b.floorPV(b.o.namespace+"-"+name, ref), metav1.CreateOptions{}); err != nil {
				return nil, err
			}
		}
		if err := w.waitFor(ctx, name); err != nil {
			return nil, err
		}
		res.LatenciesS = append(res.LatenciesS, w.at(name).Sub(start).Seconds())
		res.Bound++
	}
	res.AllBoundS = time.Since(t0).Seconds()
	res.Proc, res.Processes = proc.stop()
	summarize(res)
	return res, nil
}

// populate creates N Available-looking PVs of this driver, as a cluster
// with N Stowage volumes has, for the controller's memory benchmark.
func (b *bench) populate(ctx context.Context) (*Result, error) {
	start := time.Now()
	err := b.parallel(b.o.n, func(i int) error {
		name := fmt.Sprintf("pvc-bench-%06d", i)
		id := volumeid.ID{Backend: volumeid.NFS, Server: b.o.nfsServer, Share: b.o.nfsShare, Dir: b.o.subDir + "/" + name}
		pv := &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": driverName}},
			Spec: v1.PersistentVolumeSpec{
				StorageClassName:              "bench-nfs",
				AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteMany},
				Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
				PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
				PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
					Driver: driverName, VolumeHandle: id.String(),
					VolumeAttributes: map[string]string{"backend": "nfs"},
				}},
			},
		}
		_, err := b.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Result{AllBoundS: time.Since(start).Seconds()}, nil
}

func summarize(r *Result) {
	if len(r.LatenciesS) == 0 {
		return
	}
	s := append([]float64(nil), r.LatenciesS...)
	sort.Float64s(s)
	r.P50S = quantile(s, 0.50)
	r.P99S = quantile(s, 0.99)
	r.MaxS = s[len(s)-1]
}

// quantile of sorted s by the nearest-rank method.
func quantile(s []float64, q float64) float64 {
	i := int(q*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
