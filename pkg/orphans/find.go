package orphans

import (
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Root is one storage root this instance answers for, and the classes of
// this driver whose volumes live there.
type Root struct {
	ID volumeid.ID // without a directory: a node's base path or an NFS share
	// Classes maps the parameter fingerprint of each StorageClass of this
	// driver on this root (driver.ParamsFingerprint) to the class's name.
	// Only volumes made from one of these classes can be orphans here: a
	// record with another fingerprint may belong to another installation
	// sharing the storage, or to a bare CSI call, and is never touched.
	Classes map[string]string
}

// Orphan is a volume whose record is on a root but which no PV uses.
type Orphan struct {
	Volume driver.StoredVolume
	Class  string // the StorageClass it was made from
	Age    time.Duration
}

// Known is what the API server says exists: the volumes of this driver's
// PVs, and the claims that may still be waiting for theirs.
type Known struct {
	// Dirs holds key(root, dir) of every PV of this driver.
	Dirs map[string]bool
	// Claims maps "namespace/name" of every claim to the name its
	// provisioned volume gets ("pvc-<uid>").
	Claims map[string]string
}

// key names a directory on a root, whatever the rest of the handle says
// (handles of earlier versions carry no volume name).
func key(root volumeid.ID, dir string) string { return root.Where() + "#" + dir }

// NewKnown indexes PVs (of any driver: only driver's are kept) and claims.
func NewKnown(driverName string, pvs []*v1.PersistentVolume, claims []*v1.PersistentVolumeClaim) Known {
	k := Known{Dirs: map[string]bool{}, Claims: map[string]string{}}
	for _, pv := range pvs {
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driverName {
			continue
		}
		id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
		if err != nil {
			continue
		}
		k.Dirs[key(id, id.Dir)] = true
	}
	for _, c := range claims {
		k.Claims[c.Namespace+"/"+c.Name] = "pvc-" + string(c.UID)
	}
	return k
}

// Find returns the orphans among the volumes recorded on root: a volume
// made from one of root's classes, not retained, not being filled, older
// than grace (a volume being provisioned right now has no PV yet), used by
// no PV, and whose claim is not still waiting for it (a provisioner that
// restarts retries the same name and finds it).
func Find(root Root, vols []driver.StoredVolume, known Known, now time.Time, grace time.Duration) []Orphan {
	var out []Orphan
	for _, v := range vols {
		class, ours := root.Classes[v.Params]
		switch {
		case v.Retained, v.Copying, v.Params == "", !ours:
			continue
		case known.Dirs[key(root.ID, v.ID.Dir)]:
			continue
		case v.Claim != "" && known.Claims[v.Namespace+"/"+v.Claim] == v.Name:
			continue
		}
		age := now.Sub(v.Created)
		if age < grace {
			continue
		}
		out = append(out, Orphan{Volume: v, Class: class, Age: age})
	}
	return out
}
