package orphans

import (
	"sort"

	storagev1 "k8s.io/api/storage/v1"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// ownClasses are driver's StorageClasses of backend kind, by name, so that
// an orphan made from two identical classes is told under the first name.
func ownClasses(driverName, kind string, classes []*storagev1.StorageClass) []*storagev1.StorageClass {
	var out []*storagev1.StorageClass
	for _, sc := range classes {
		if sc.Provisioner == driverName && sc.Parameters[params.Backend] == kind {
			out = append(out, sc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NFSRoots are the shares the driver's NFS StorageClasses name: the driver
// keeps no list of shares, the classes are where they are written.
func NFSRoots(driverName string, classes []*storagev1.StorageClass) []Root {
	byWhere := map[string]*Root{}
	var order []string
	for _, sc := range ownClasses(driverName, volumeid.NFS, classes) {
		server, share := sc.Parameters[params.Server], sc.Parameters[params.Share]
		if volumeid.ValidateServer(server) != nil || volumeid.ValidateShare(share) != nil {
			continue // the provisioner tells the class's users what is wrong
		}
		id := volumeid.ID{Backend: volumeid.NFS, Server: server, Share: share}
		r, ok := byWhere[id.Where()]
		if !ok {
			r = &Root{ID: id, Classes: map[string]string{}}
			byWhere[id.Where()] = r
			order = append(order, id.Where())
		}
		addClass(r, sc)
	}
	out := make([]Root, 0, len(order))
	for _, w := range order {
		out = append(out, *byWhere[w])
	}
	return out
}

// LocalRoot is node's base path with the driver's local classes; ok is false
// when the driver has no local class, so no local volume can be an orphan.
func LocalRoot(driverName, node string, classes []*storagev1.StorageClass) (root Root, ok bool) {
	root = Root{ID: volumeid.ID{Backend: volumeid.Local, Node: node}, Classes: map[string]string{}}
	for _, sc := range ownClasses(driverName, volumeid.Local, classes) {
		addClass(&root, sc)
	}
	return root, len(root.Classes) > 0
}

func addClass(r *Root, sc *storagev1.StorageClass) {
	sum := driver.ParamsFingerprint(sc.Parameters)
	if _, dup := r.Classes[sum]; !dup {
		r.Classes[sum] = sc.Name
	}
}
