package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// What the deletion phase measures, per row, copied into the result so a
// reader of the JSON needs no source.
const (
	deleteWhatProvisioned = "claims deleted at once; per PV: its claim's delete call until the PV is gone from the API and its directory is gone from the export"
	deleteWhatFloor       = "floor: claims deleted at once, their pre-made Retain PVs deleted by the bench as soon as the PV controller marks them Released (no provisioner, no directory); per PV: its claim's delete call until the PV is gone"
)

// dirPollInterval is how often the export directory is listed while
// volumes are being deleted; the directory-gone times are this coarse.
const dirPollInterval = 20 * time.Millisecond

// gone records when each volume of the run left the API and the export.
type gone struct {
	mu  sync.Mutex
	pv  map[string]time.Time // PV name -> deletion seen by the watch
	dir map[string]time.Time // PV name -> its directory first seen missing
}

// deleteAll deletes every claim of the run at once and waits until their
// PVs are gone from the API and (rows that provision) their directories
// are gone from the export.
func (b *bench) deleteAll(ctx context.Context, names []string, res *Result) error {
	pvOf, err := b.boundVolumes(ctx, names)
	if err != nil {
		return err
	}
	floor := b.o.mode == "floor"
	checkDirs := !floor
	if checkDirs {
		if b.o.exportDir == "" {
			return fmt.Errorf("the deletion phase needs -export-dir (the local directory behind -nfs-share) to see directories go; run.sh passes STOWAGE_NFS_EXPORT_DIR from test/nfs/ganesha.sh")
		}
		for _, pv := range pvOf {
			if _, err := os.Stat(b.volumeDir(pv)); err != nil {
				return fmt.Errorf("volume directory of %s before deletion: %w; is -export-dir the directory behind the share and -subdir the class's?", pv, err)
			}
		}
	}
	g := &gone{pv: map[string]time.Time{}, dir: map[string]time.Time{}}
	stopFloor, err := b.watchPVs(ctx, g, floor)
	if err != nil {
		return err
	}
	defer stopFloor()

	proc := startProc(b.o.pids)
	called := make([]time.Time, len(names))
	t0 := time.Now()
	if err := b.parallel(len(names), func(i int) error {
		called[i] = time.Now()
		return b.client.CoreV1().PersistentVolumeClaims(b.o.namespace).Delete(ctx, names[i], metav1.DeleteOptions{})
	}); err != nil {
		return fmt.Errorf("delete claims: %w", err)
	}
	if err := b.waitGone(ctx, g, pvOf, checkDirs); err != nil {
		return err
	}
	res.DeleteProc, _ = proc.stop()
	var last time.Time
	for i, c := range names {
		pv := pvOf[c]
		at := g.pv[pv]
		if d, ok := g.dir[pv]; ok && d.After(at) {
			at = d
		}
		if at.After(last) {
			last = at
		}
		res.DeleteLatenciesS = append(res.DeleteLatenciesS, at.Sub(called[i]).Seconds())
	}
	res.DeleteAllGoneS = last.Sub(t0).Seconds()
	res.DeleteWhat = deleteWhatProvisioned
	if floor {
		res.DeleteWhat = deleteWhatFloor
	}
	s := append([]float64(nil), res.DeleteLatenciesS...)
	sort.Float64s(s)
	res.DeleteP50S, res.DeleteP99S, res.DeleteMaxS = quantile(s, 0.50), quantile(s, 0.99), s[len(s)-1]
	fmt.Fprintf(os.Stderr, "bulk: %s N=%d deleted: all gone %.2f s, per PV p50 %.3f s, p99 %.3f s\n",
		b.o.mode, len(names), res.DeleteAllGoneS, res.DeleteP50S, res.DeleteP99S)
	return nil
}

// volumeDir is where the export holds a PV's directory: both Stowage's
// class and the peer's name it subDir/<PV name>.
func (b *bench) volumeDir(pv string) string {
	return filepath.Join(b.o.exportDir, b.o.subDir, pv)
}

func (b *bench) boundVolumes(ctx context.Context, names []string) (map[string]string, error) {
	list, err := b.client.CoreV1().PersistentVolumeClaims(b.o.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	pvOf := map[string]string{}
	for _, c := range list.Items {
		pvOf[c.Name] = c.Spec.VolumeName
	}
	for _, n := range names {
		if pvOf[n] == "" {
			return nil, fmt.Errorf("claim %s has no volume after all were Bound", n)
		}
	}
	return pvOf, nil
}

// watchPVs records PV deletions; for the floor it also deletes each PV the
// PV controller marks Released, as the least a deleter must do.
func (b *bench) watchPVs(ctx context.Context, g *gone, floor bool) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	f := informers.NewSharedInformerFactory(b.client, 0)
	inf := f.Core().V1().PersistentVolumes().Informer()
	released := make(chan string, 1024)
	var wg sync.WaitGroup
	if floor {
		for w := 0; w < b.o.workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range released {
					err := b.client.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{})
					if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
						fmt.Fprintf(os.Stderr, "bulk: delete released PV %s: %v\n", name, err)
					}
				}
			}()
		}
	}
	var sentMu sync.Mutex
	sent := map[string]bool{}
	update := func(obj any) {
		pv, ok := obj.(*v1.PersistentVolume)
		if !floor || !ok || pv.Spec.StorageClassName != b.o.class || pv.Status.Phase != v1.VolumeReleased {
			return
		}
		sentMu.Lock()
		first := !sent[pv.Name]
		sent[pv.Name] = true
		sentMu.Unlock()
		if first {
			released <- pv.Name
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    update,
		UpdateFunc: func(_, obj any) { update(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			pv, ok := obj.(*v1.PersistentVolume)
			if !ok {
				return
			}
			now := time.Now()
			g.mu.Lock()
			g.pv[pv.Name] = now
			g.mu.Unlock()
		},
	}); err != nil {
		cancel()
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		cancel()
		return nil, fmt.Errorf("PV informer did not sync")
	}
	return func() {
		cancel()
		f.Shutdown()
		close(released)
		wg.Wait()
	}, nil
}

// waitGone polls until every PV is gone and, with checkDirs, every volume
// directory is missing from the export.
func (b *bench) waitGone(ctx context.Context, g *gone, pvOf map[string]string, checkDirs bool) error {
	parent := filepath.Join(b.o.exportDir, b.o.subDir)
	for {
		var present map[string]bool
		if checkDirs {
			entries, err := os.ReadDir(parent)
			if err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("list %s: %w", parent, err)
			}
			present = make(map[string]bool, len(entries))
			for _, e := range entries {
				present[e.Name()] = true
			}
		}
		now := time.Now()
		g.mu.Lock()
		left := 0
		for _, pv := range pvOf {
			if checkDirs {
				if _, seen := g.dir[pv]; !seen && !present[pv] {
					g.dir[pv] = now
				}
				if _, seen := g.dir[pv]; !seen {
					left++
					continue
				}
			}
			if _, seen := g.pv[pv]; !seen {
				left++
			}
		}
		g.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d volumes not gone (PV or directory): %w", left, len(pvOf), ctx.Err())
		case <-time.After(dirPollInterval):
		}
	}
}
