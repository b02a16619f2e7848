package orphans

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/metrics"
)

// Pass looks at every root once: reports what it finds and removes the
// orphans old enough, if asked.
func (r *Reconciler) Pass(ctx context.Context) {
	logger := klog.FromContext(ctx)
	roots, err := r.roots()
	if err != nil {
		logger.Error(err, "Cannot list the StorageClasses; no orphan pass this time")
		return
	}
	known, err := r.known()
	if err != nil {
		logger.Error(err, "Cannot list PVs and claims; no orphan pass this time")
		return
	}
	counts := map[string]int{}
	seen := map[string]bool{}
	for _, root := range roots {
		vols, err := r.cfg.Volumes.StoredVolumes(ctx, root.ID)
		if err != nil {
			// The root is left out of the gauge rather than reported as 0.
			logger.Error(err, "Cannot read the volume records; orphans there are not counted this time", "root", root.ID.Where())
			continue
		}
		found := Find(root, vols, known, time.Now(), r.cfg.Grace)
		left := len(found)
		for _, o := range found {
			k := key(root.ID, o.Volume.ID.Dir)
			seen[k] = true
			if r.removable(o) {
				if r.remove(ctx, o) {
					left--
					delete(r.told, k)
					continue
				}
			}
			if !r.told[k] {
				r.tell(ctx, o)
				r.told[k] = true
			}
		}
		counts[metrics.RootLabel(root.ID)] = left
	}
	for k := range r.told {
		if !seen[k] {
			delete(r.told, k) // gone or adopted: tell again if it comes back
		}
	}
	metrics.ReportOrphans(counts)
	logger.V(2).Info("Orphan pass done", "roots", len(roots), "orphans", counts)
}

func (r *Reconciler) roots() ([]Root, error) {
	classes, err := r.classes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	if r.cfg.Node == "" {
		return NFSRoots(r.cfg.DriverName, classes), nil
	}
	if root, ok := LocalRoot(r.cfg.DriverName, r.cfg.Node, classes); ok {
		return []Root{root}, nil
	}
	return nil, nil
}

func (r *Reconciler) known() (Known, error) {
	pvs, err := r.pvs.List(labels.Everything())
	if err != nil {
		return Known{}, err
	}
	claims, err := r.claims.List(labels.Everything())
	if err != nil {
		return Known{}, err
	}
	return NewKnown(r.cfg.DriverName, pvs, claims), nil
}

func (r *Reconciler) removable(o Orphan) bool {
	return r.cfg.RemoveAfter > 0 && o.Age >= r.cfg.RemoveAfter
}

// tell logs an orphan and records an event on its class (NFS) or node.
func (r *Reconciler) tell(ctx context.Context, o Orphan) {
	v := o.Volume
	klog.FromContext(ctx).Info("Found an orphaned volume: its record and directory are on the storage but no PersistentVolume uses it",
		"volume", v.Name, "claim", claimOf(v), "dir", v.ID.Dir, "root", v.ID.Where(), "class", o.Class,
		"age", o.Age.Round(time.Second), "volumeID", v.ID.String())
	what := "reported only (--orphans-remove-after=0)"
	if r.cfg.RemoveAfter > 0 {
		what = fmt.Sprintf("removed through DeleteVolume (onDelete=%s) once %s old", v.ID.OnDelete, r.cfg.RemoveAfter)
	}
	r.cfg.Recorder.Eventf(r.target(o), v1.EventTypeWarning, ReasonOrphaned,
		"volume %s%s, directory %s on %s, made %s ago from class %s, is used by no PersistentVolume; %s. To keep its data, move it away or make a static PV for it",
		v.Name, claimPart(v), v.ID.Dir, v.ID.Where(), o.Age.Round(time.Second), o.Class, what)
}

// remove deletes an orphan once the API server itself, not only the cache,
// confirms that no PV uses it and its claim is gone.
func (r *Reconciler) remove(ctx context.Context, o Orphan) bool {
	logger := klog.FromContext(ctx)
	v := o.Volume
	if still, err := r.stillWanted(ctx, o); err != nil || still {
		if err != nil {
			logger.Error(err, "Not removing an orphan: cannot confirm with the API server that nothing uses it", "volumeID", v.ID.String())
		}
		return false
	}
	_, err := r.cfg.Volumes.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.ID.String()})
	if err != nil {
		logger.Error(err, "Could not remove an orphaned volume", "volumeID", v.ID.String(), "dir", v.ID.Dir, "root", v.ID.Where())
		r.cfg.Recorder.Eventf(r.target(o), v1.EventTypeWarning, ReasonRemovalFailed,
			"orphaned volume %s%s, directory %s on %s, could not be removed: %v", v.Name, claimPart(v), v.ID.Dir, v.ID.Where(), err)
		return false
	}
	logger.Info("Removed an orphaned volume", "volume", v.Name, "claim", claimOf(v), "dir", v.ID.Dir, "root", v.ID.Where(),
		"age", o.Age.Round(time.Second), "onDelete", v.ID.OnDelete)
	r.cfg.Recorder.Eventf(r.target(o), v1.EventTypeNormal, ReasonRemoved,
		"orphaned volume %s%s, directory %s on %s, %s old and used by no PersistentVolume, was deleted (onDelete=%s)",
		v.Name, claimPart(v), v.ID.Dir, v.ID.Where(), o.Age.Round(time.Second), v.ID.OnDelete)
	return true
}

// stillWanted asks the API server (not the informer cache, which may lag)
// whether a PV now uses the orphan's directory or its claim is back.
func (r *Reconciler) stillWanted(ctx context.Context, o Orphan) (bool, error) {
	pvs, err := r.cfg.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	var ptrs []*v1.PersistentVolume
	for i := range pvs.Items {
		ptrs = append(ptrs, &pvs.Items[i])
	}
	var claims []*v1.PersistentVolumeClaim
	if v := o.Volume; v.Claim != "" {
		c, err := r.cfg.Client.CoreV1().PersistentVolumeClaims(v.Namespace).Get(ctx, v.Claim, metav1.GetOptions{})
		if err == nil {
			claims = append(claims, c)
		} else if !apierrors.IsNotFound(err) {
			return false, err
		}
	}
	known := NewKnown(r.cfg.DriverName, ptrs, claims)
	root := Root{ID: o.Volume.ID, Classes: map[string]string{o.Volume.Params: o.Class}}
	root.ID.Dir, root.ID.Name, root.ID.OnDelete = "", "", ""
	return len(Find(root, []driver.StoredVolume{o.Volume}, known, time.Now(), 0)) == 0, nil
}

// target is the object an orphan's events are about.
func (r *Reconciler) target(o Orphan) runtime.Object {
	if r.cfg.Node != "" {
		// Nodes are referred to by name, as kubelet does.
		return &v1.ObjectReference{Kind: "Node", Name: r.cfg.Node, UID: types.UID(r.cfg.Node)}
	}
	if sc, err := r.classes.Get(o.Class); err == nil {
		return sc
	}
	return &v1.ObjectReference{Kind: "StorageClass", APIVersion: "storage.k8s.io/v1", Name: o.Class}
}

func claimOf(v driver.StoredVolume) string {
	if v.Claim == "" {
		return ""
	}
	return v.Namespace + "/" + v.Claim
}

func claimPart(v driver.StoredVolume) string {
	if v.Claim == "" {
		return ""
	}
	return " (claim " + claimOf(v) + ", deleted)"
}
