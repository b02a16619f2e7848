package driver

import (
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
	"github.com/stowage-csi/stowage/pkg/backend/nfs"
)

// The backends the tests give a Driver: a node's local base path (no
// quota), NFS shares through stores (a fake or the real pool).
func localOn(node string, s *local.Store) []backend.Backend {
	return []backend.Backend{local.NewBackend(node, s, nil)}
}

func nfsVia(stores nfs.Stores, m mount.Interface) []backend.Backend {
	return []backend.Backend{nfs.NewBackend(stores, m)}
}

// fakeOtherMount finds, in a fake mounter's table, another mount point of
// the same source as target: what the kernel's table shows for a second
// publish of one volume.
func fakeOtherMount(fake *mount.FakeMounter) func(string) (string, error) {
	return func(target string) (string, error) {
		mps, err := fake.List()
		if err != nil {
			return "", err
		}
		var source string
		for _, m := range mps {
			if m.Path == target {
				source = m.Device
			}
		}
		for _, m := range mps {
			if m.Path != target && m.Device == source {
				return m.Path, nil
			}
		}
		return "", nil
	}
}
