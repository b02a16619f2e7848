//go:build linux

package quota

import (
	"testing"

	"github.com/stowage-csi/stowage/pkg/quota/quotatest"
)

// TestDeviceFallback drives quotactl through the block device, the path
// kernels before 5.14 (no quotactl_fd) take.
func TestDeviceFallback(t *testing.T) {
	for _, kind := range []quotatest.Kind{quotatest.XFSPrjQuota, quotatest.Ext4PrjQuota} {
		t.Run(kind.Name, func(t *testing.T) {
			fs, err := Open(quotatest.Mount(t, kind))
			if err != nil {
				t.Fatal(err)
			}
			fs.t.noFD = true
			const id, limit = 4242, 5 << 20
			if err := fs.SetLimit(id, limit); err != nil {
				t.Fatal(err)
			}
			u, err := fs.Usage(id)
			if err != nil || u.Limit != limit || u.InodeLimit != InodesFor(limit) {
				t.Fatalf("Usage = %+v, %v; want limit %d and %d inodes", u, err, limit, InodesFor(limit))
			}
			fs.t.device = "/dev/no-such-device"
			if _, err := fs.Usage(id); err == nil {
				t.Error("quotactl through a missing device succeeded; the fallback was not used")
			}
		})
	}
}
