package snapshotter

import (
	"fmt"
	"sort"
	"strings"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
)

// reservedPrefix marks class parameters meant for the snapshotter, not the
// driver; they are not passed on.
const reservedPrefix = "csi.storage.k8s.io/"

// parameters are what CreateSnapshot gets from the content's class: its
// parameters without the reserved ones. A class that names secrets is
// refused rather than half obeyed, since Stowage reads none.
func (s *Snapshotter) parameters(c *crdv1.VolumeSnapshotContent) (map[string]string, error) {
	if c.Spec.VolumeSnapshotClassName == nil || *c.Spec.VolumeSnapshotClassName == "" {
		return nil, fmt.Errorf("content %s names no VolumeSnapshotClass; a snapshot of a volume needs one: set spec.volumeSnapshotClassName on the VolumeSnapshot", c.Name)
	}
	className := *c.Spec.VolumeSnapshotClassName
	class, err := s.classes.Get(className)
	if err != nil {
		return nil, fmt.Errorf("VolumeSnapshotClass %s of content %s: %w; create the class or name another in the VolumeSnapshot", className, c.Name, err)
	}
	out := map[string]string{}
	var secrets []string
	for k, v := range class.Parameters {
		switch {
		case !strings.HasPrefix(k, reservedPrefix):
			out[k] = v
		case strings.Contains(k, "secret-"):
			secrets = append(secrets, k)
		}
	}
	if len(secrets) > 0 {
		sort.Strings(secrets)
		return nil, fmt.Errorf("VolumeSnapshotClass %s names secrets (%s), but Stowage uses no credentials for snapshots: remove those parameters from the class",
			className, strings.Join(secrets, ", "))
	}
	return out, nil
}
