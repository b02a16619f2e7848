package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// What the watches record, per object name.
const (
	podScheduled = "pod-scheduled"
	podRunning   = "pod-running"
	podGone      = "pod-gone"
	claimBound   = "claim-bound"
	claimNode    = "claim-selected-node"
	claimGone    = "claim-gone"
	pvSeen       = "pv-seen"
	pvAvailable  = "pv-available"
	pvReleased   = "pv-released"
	pvDeleting   = "pv-deleting"
	pvGone       = "pv-gone"
)

// staticClass is the floor's class: no provisioner, WaitForFirstConsumer,
// PVs made by the bench before the clock starts. The scheduler binds them in
// its PreBind and the PV controller completes the binding, as for Stowage's
// claims, minus the provisioning.
const staticClass = "stowage-bench-static"

type bench struct {
	o      options
	client kubernetes.Interface
	node   string
	rec    *recorder
	stop   context.CancelFunc
}

// recorder keeps the first time a watch showed each fact about each object.
type recorder struct {
	mu     sync.Mutex
	cond   *sync.Cond
	seen   map[string]map[string]time.Time // fact -> name -> time
	volume map[string]string               // claim -> PV
	failed map[string]string               // pod -> why it failed
}

func (r *recorder) mark(fact, name string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.seen[fact]
	if m == nil {
		m = map[string]time.Time{}
		r.seen[fact] = m
	}
	if _, ok := m[name]; !ok {
		m[name] = now
		r.cond.Broadcast()
	}
}

func (r *recorder) at(fact, name string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[fact][name]
}

// since is the seconds from t0 to the fact, 0 if not seen.
func (r *recorder) since(fact, name string, t0 time.Time) float64 {
	t := r.at(fact, name)
	if t.IsZero() {
		return 0
	}
	return t.Sub(t0).Seconds()
}

// waitAll blocks until fact was seen for every name, a pod failed, or ctx ends.
func (r *recorder) waitAll(ctx context.Context, fact string, names []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		missing := ""
		count := 0
		for _, n := range names {
			if why, ok := r.failed[n]; ok {
				return fmt.Errorf("pod %s failed: %s", n, why)
			}
			if _, ok := r.seen[fact][n]; !ok {
				count++
				missing = n
			}
		}
		if count == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d not %s (e.g. %s): %w", count, len(names), fact, missing, ctx.Err())
		}
		r.cond.Wait()
	}
}

// setup makes a fresh namespace and starts the watches.
func (b *bench) setup(ctx context.Context) error {
	nodes, err := b.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	if len(nodes.Items) > 0 {
		b.node = nodes.Items[0].Name
	}
	if err := b.checkInstalled(ctx); err != nil {
		return err
	}
	b.teardown(ctx) // a previous run's leftovers
	wffc := storagev1.VolumeBindingWaitForFirstConsumer
	retain := v1.PersistentVolumeReclaimRetain
	if _, err := b.client.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: staticClass, Labels: map[string]string{"app": "stowage-bench-pods"}},
		Provisioner: "kubernetes.io/no-provisioner", VolumeBindingMode: &wffc, ReclaimPolicy: &retain,
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create class %s: %w", staticClass, err)
	}
	if _, err := b.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.o.namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	// Pods are refused until the namespace's default ServiceAccount exists.
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := b.client.CoreV1().ServiceAccounts(b.o.namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("default ServiceAccount of %s: %w", b.o.namespace, err)
	}
	return b.watch(ctx)
}

// teardown deletes the namespace and waits until it is gone (its claims'
// PVs go with it).
func (b *bench) teardown(ctx context.Context) {
	if b.stop != nil {
		b.stop()
	}
	_ = b.client.StorageV1().StorageClasses().Delete(ctx, staticClass, metav1.DeleteOptions{})
	_ = b.client.CoreV1().PersistentVolumes().DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: "app=stowage-bench-pods"})
	if b.o.staticDir != "" {
		_ = os.RemoveAll(b.o.staticDir)
	}
	err := b.client.CoreV1().Namespaces().Delete(ctx, b.o.namespace, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	_ = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := b.client.CoreV1().Namespaces().Get(ctx, b.o.namespace, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func (b *bench) watch(ctx context.Context) error {
	ctx, b.stop = context.WithCancel(ctx)
	r := &recorder{seen: map[string]map[string]time.Time{}, volume: map[string]string{}, failed: map[string]string{}}
	r.cond = sync.NewCond(&r.mu)
	b.rec = r
	ns := informers.NewSharedInformerFactoryWithOptions(b.client, 0, informers.WithNamespace(b.o.namespace))
	all := informers.NewSharedInformerFactory(b.client, 0)
	pods := ns.Core().V1().Pods().Informer()
	claims := ns.Core().V1().PersistentVolumeClaims().Informer()
	pvs := all.Core().V1().PersistentVolumes().Informer()

	onPod := func(obj any) {
		p, ok := obj.(*v1.Pod)
		if !ok {
			return
		}
		for _, c := range p.Status.Conditions {
			if c.Type == v1.PodScheduled && c.Status == v1.ConditionTrue {
				r.mark(podScheduled, p.Name)
			}
		}
		switch p.Status.Phase {
		case v1.PodRunning:
			r.mark(podRunning, p.Name)
		case v1.PodFailed:
			r.mu.Lock()
			r.failed[p.Name] = p.Status.Reason + " " + p.Status.Message
			r.cond.Broadcast()
			r.mu.Unlock()
		}
	}
	onClaim := func(obj any) {
		c, ok := obj.(*v1.PersistentVolumeClaim)
		if !ok {
			return
		}
		if c.Annotations["volume.kubernetes.io/selected-node"] != "" {
			r.mark(claimNode, c.Name)
		}
		if c.Status.Phase != v1.ClaimBound {
			return
		}
		r.mu.Lock()
		r.volume[c.Name] = c.Spec.VolumeName
		r.mu.Unlock()
		r.mark(claimBound, c.Name)
	}
	onPV := func(obj any) {
		pv, ok := obj.(*v1.PersistentVolume)
		if !ok || (pv.Spec.StorageClassName != staticClass && (pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != b.o.namespace)) {
			return
		}
		r.mark(pvSeen, pv.Name)
		if pv.Status.Phase == v1.VolumeAvailable {
			r.mark(pvAvailable, pv.Name)
		}
		if pv.Status.Phase == v1.VolumeReleased {
			r.mark(pvReleased, pv.Name)
		}
		if pv.DeletionTimestamp != nil {
			r.mark(pvDeleting, pv.Name)
		}
	}
	gone := func(fact string) func(obj any) {
		return func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if m, ok := obj.(metav1.Object); ok {
				r.mark(fact, m.GetName())
			}
		}
	}
	for _, h := range []struct {
		inf  cache.SharedIndexInformer
		see  func(any)
		fact string
	}{{pods, onPod, podGone}, {claims, onClaim, claimGone}, {pvs, onPV, pvGone}} {
		see := h.see
		if _, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: see, UpdateFunc: func(_, obj any) { see(obj) }, DeleteFunc: gone(h.fact),
		}); err != nil {
			return err
		}
	}
	ns.Start(ctx.Done())
	all.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced, claims.HasSynced, pvs.HasSynced) {
		return fmt.Errorf("informers did not sync")
	}
	go func() { <-ctx.Done(); r.mu.Lock(); r.cond.Broadcast(); r.mu.Unlock() }()
	return nil
}

// pod is the measured pod: busybox that exits at once on SIGTERM, with
// /data from claim or, when claim is "", from an inline Stowage volume of
// the claims' size (inline) or an emptyDir.
func (b *bench) pod(name, claim string, inline bool) *v1.Pod {
	vol := v1.Volume{Name: "data"}
	switch {
	case claim != "":
		vol.PersistentVolumeClaim = &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}
	case inline:
		vol.CSI = &v1.CSIVolumeSource{Driver: stowageDriver, VolumeAttributes: map[string]string{"size": b.o.size}}
	default:
		vol.EmptyDir = &v1.EmptyDirVolumeSource{}
	}
	grace := int64(5)
	no := false
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.o.namespace, Labels: map[string]string{"app": "stowage-bench-pods"}},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			EnableServiceLinks:            &no,
			AutomountServiceAccountToken:  &no,
			Containers: []v1.Container{{
				Name: "c", Image: b.o.image, ImagePullPolicy: v1.PullNever,
				Command:      []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"},
				VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}},
			}},
			Volumes: []v1.Volume{vol},
		},
	}
}

// staticPV is a floor PV: a hostPath directory (created by kubelet) pinned
// to the node like a local volume.
func (b *bench) staticPV(name string) *v1.PersistentVolume {
	dirOrCreate := v1.HostPathDirectoryOrCreate
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "stowage-bench-pods"}},
		Spec: v1.PersistentVolumeSpec{
			StorageClassName:              staticClass,
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse(b.o.size)},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{
				Path: filepath.Join(b.o.staticDir, name), Type: &dirOrCreate,
			}},
		},
	}
	if b.node != "" {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: v1.NodeSelectorOpIn, Values: []string{b.node}}},
		}}}}
	}
	return pv
}

func (b *bench) claim(name, class string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.o.namespace, Labels: map[string]string{"app": "stowage-bench-pods"}},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(b.o.size)}},
		},
	}
}

// parallel runs fn(i) for every i in [0,n) at once and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// wave starts n pods of the variant, waits for all Running, deletes them and
// (claim variants) their claims, and waits for everything to be gone.
func (b *bench) wave(ctx context.Context, v variant, n, rep, order int) (*Wave, *DeleteWave, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	r := b.rec
	pods, claims := make([]string, n), make([]string, n)
	var static []string
	for i := range n {
		pods[i] = fmt.Sprintf("%s-%d-%d-%03d", v.prefix, n, rep, i)
		if v.class != "" {
			claims[i] = pods[i]
		}
		if v.static {
			static = append(static, b.o.namespace+"-"+pods[i])
		}
	}
	// The floor's PVs exist before the clock starts.
	if len(static) > 0 {
		if err := parallel(n, func(i int) error {
			_, err := b.client.CoreV1().PersistentVolumes().Create(ctx, b.staticPV(static[i]), metav1.CreateOptions{})
			return err
		}); err != nil {
			return nil, nil, fmt.Errorf("create static PVs: %w", err)
		}
		if err := r.waitAll(ctx, pvAvailable, static); err != nil {
			return nil, nil, err
		}
	}
	created := make([]time.Time, n)
	w := &Wave{Variant: v.name, Rep: rep, Order: order}
	t0 := time.Now()
	w.T0 = t0.UTC().Format(time.RFC3339Nano)
	err := parallel(n, func(i int) error {
		created[i] = time.Now()
		if claims[i] != "" {
			if _, err := b.client.CoreV1().PersistentVolumeClaims(b.o.namespace).Create(ctx, b.claim(claims[i], v.class), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create claim: %w", err)
			}
		}
		_, err := b.client.CoreV1().Pods(b.o.namespace).Create(ctx, b.pod(pods[i], claims[i], v.inline), metav1.CreateOptions{})
		return err
	})
	w.CreateS = time.Since(t0).Seconds()
	if err != nil {
		return nil, nil, err
	}
	if err := r.waitAll(ctx, podRunning, pods); err != nil {
		return nil, nil, err
	}
	var lat []float64
	var last time.Time
	for i, p := range pods {
		at := r.at(podRunning, p)
		if at.After(last) {
			last = at
		}
		pt := PodTimes{Name: p, Claim: claims[i], RunningS: at.Sub(created[i]).Seconds(),
			ScheduledS: r.since(podScheduled, p, created[i])}
		if claims[i] != "" {
			r.mu.Lock()
			pt.PV = r.volume[claims[i]]
			r.mu.Unlock()
			pt.BoundS = r.since(claimBound, claims[i], created[i])
			pt.SelectedNodeS = r.since(claimNode, claims[i], created[i])
			pt.PVSeenS = r.since(pvSeen, pt.PV, created[i])
		}
		lat = append(lat, pt.RunningS)
		w.Pods = append(w.Pods, pt)
	}
	w.AllRunningS = last.Sub(t0).Seconds()
	w.P50S, w.P99S, w.MaxS = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1)

	// Pods first, and wait until kubelet has let go of them.
	tp := time.Now()
	if err := parallel(n, func(i int) error {
		err := b.client.CoreV1().Pods(b.o.namespace).Delete(ctx, pods[i], metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}); err != nil {
		return nil, nil, fmt.Errorf("delete pods: %w", err)
	}
	if err := r.waitAll(ctx, podGone, pods); err != nil {
		return nil, nil, err
	}
	for _, p := range pods {
		w.PodsGoneS = max(w.PodsGoneS, r.at(podGone, p).Sub(tp).Seconds())
	}
	if v.class == "" {
		return w, nil, nil
	}
	d := &DeleteWave{Rep: rep, PodsGoneS: w.PodsGoneS}
	pvs := make([]string, n)
	r.mu.Lock()
	for i, c := range claims {
		pvs[i] = r.volume[c]
	}
	r.mu.Unlock()
	deleted := make([]time.Time, n)
	t1 := time.Now()
	d.T0 = t1.UTC().Format(time.RFC3339Nano)
	if err := parallel(n, func(i int) error {
		deleted[i] = time.Now()
		return b.client.CoreV1().PersistentVolumeClaims(b.o.namespace).Delete(ctx, claims[i], metav1.DeleteOptions{})
	}); err != nil {
		return nil, nil, fmt.Errorf("delete claims: %w", err)
	}
	if v.static {
		// Retain: the floor's PVs go by hand; not measured.
		if err := parallel(n, func(i int) error {
			return b.client.CoreV1().PersistentVolumes().Delete(ctx, static[i], metav1.DeleteOptions{})
		}); err != nil {
			return nil, nil, fmt.Errorf("delete static PVs: %w", err)
		}
	}
	if err := r.waitAll(ctx, pvGone, pvs); err != nil {
		return nil, nil, err
	}
	lat = lat[:0]
	last = time.Time{}
	for i, pv := range pvs {
		at := r.at(pvGone, pv)
		if at.After(last) {
			last = at
		}
		pt := PVTimes{PV: pv, Claim: claims[i], GoneS: at.Sub(deleted[i]).Seconds(),
			ClaimGoneS:  r.since(claimGone, claims[i], deleted[i]),
			ReleasedS:   r.since(pvReleased, pv, deleted[i]),
			DeletionTSS: r.since(pvDeleting, pv, deleted[i])}
		lat = append(lat, pt.GoneS)
		d.PVs = append(d.PVs, pt)
	}
	d.AllGoneS = last.Sub(t1).Seconds()
	d.P50S, d.P99S = quantile(lat, 0.5), quantile(lat, 0.99)
	if !v.deletes {
		return w, nil, nil // the static floor's PVs went by hand: not a measurement
	}
	return w, d, nil
}
