package provisioner

import (
	"context"
	"fmt"
	"path"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/stowage-csi/stowage/pkg/reclaim"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Two PVs may name the same directory (two static PVs, as the ReadOnlyMany
// example does) or nested ones. Removing or scrubbing one of them then
// takes the other's data, so neither is done while another PV that still
// holds a claim uses the same, an enclosing or an enclosed directory.

// usedBy returns a PV other than pv, not Released or Failed, whose volume
// directory is pv's, inside it, or around it; nil if there is none.
func usedBy(pvs []*v1.PersistentVolume, driver string, pv *v1.PersistentVolume) *v1.PersistentVolume {
	if pv.Spec.CSI == nil {
		return nil
	}
	mine, ok := location(pv.Spec.CSI.VolumeHandle)
	if !ok {
		return nil
	}
	for _, other := range pvs {
		if other.Name == pv.Name || other.Spec.CSI == nil || other.Spec.CSI.Driver != driver {
			continue
		}
		if other.Status.Phase == v1.VolumeReleased || other.Status.Phase == v1.VolumeFailed {
			continue
		}
		theirs, ok := location(other.Spec.CSI.VolumeHandle)
		if ok && theirs.root == mine.root && related(theirs.dir, mine.dir) {
			return other
		}
	}
	return nil
}

type place struct{ root, dir string }

// location is where a handle's directory lives: the server (NFS; shares of
// one server may nest, so the share is part of the path) or the node.
func location(handle string) (place, bool) {
	id, err := volumeid.Parse(handle)
	if err != nil {
		return place{}, false
	}
	if id.Backend == volumeid.Local {
		return place{root: "local#" + id.Node, dir: id.Dir}, true
	}
	return place{root: "nfs#" + id.Server, dir: path.Join(id.Share, id.Dir)}, true
}

// related reports whether a and b are the same directory or one holds the other.
func related(a, b string) bool {
	return a == b || strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") || strings.HasPrefix(b, strings.TrimSuffix(a, "/")+"/")
}

// checkNotShared is the guard both Delete and the recycler's scrub pass.
func checkNotShared(lister corelisters.PersistentVolumeLister, driver string, pv *v1.PersistentVolume) error {
	pvs, err := lister.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list PVs to check that no other uses %s: %w", pv.Name, err)
	}
	if other := usedBy(pvs, driver, pv); other != nil {
		return fmt.Errorf("PV %s (%s, claim %s) uses the same or a nested directory as PV %s (%s); nothing is removed while it does. Release that PV first, or set this PV's reclaim policy to Retain",
			other.Name, other.Status.Phase, claimOf(other), pv.Name, pv.Spec.CSI.VolumeHandle)
	}
	return nil
}

func claimOf(pv *v1.PersistentVolume) string {
	if pv.Spec.ClaimRef == nil {
		return "none"
	}
	return pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name
}

// sharedScrubGuard puts the same check in front of the driver's scrub.
type sharedScrubGuard struct {
	next   reclaim.Scrubber
	pvs    corelisters.PersistentVolumeLister
	driver string
}

func (g sharedScrubGuard) ScrubVolume(ctx context.Context, volumeID, pvName string) error {
	pv, err := g.pvs.Get(pvName)
	if err != nil {
		return fmt.Errorf("read PV %s: %w", pvName, err)
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.VolumeHandle != volumeID {
		return fmt.Errorf("PV %s does not name volume %s; nothing scrubbed", pvName, volumeID)
	}
	if err := checkNotShared(g.pvs, g.driver, pv); err != nil {
		return err
	}
	return g.next.ScrubVolume(ctx, volumeID, pvName)
}
