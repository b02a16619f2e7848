//go:build linux

package quota_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stowage-csi/stowage/pkg/quota"
	"github.com/stowage-csi/stowage/pkg/quota/quotatest"
)

// TestFreeProjectSkipsUsedIDs checks the collision rule: once a directory
// holds an ID, asking for the same key again yields a different ID.
func TestFreeProjectSkipsUsedIDs(t *testing.T) {
	for _, kind := range []quotatest.Kind{quotatest.XFSPrjQuota, quotatest.Ext4PrjQuota} {
		t.Run(kind.Name, func(t *testing.T) {
			mnt := quotatest.Mount(t, kind)
			fs, err := quota.Open(mnt)
			if err != nil {
				t.Fatal(err)
			}
			first, err := fs.FreeProject("pvc-a")
			if err != nil {
				t.Fatal(err)
			}
			again, err := fs.FreeProject("pvc-a")
			if err != nil || again != first {
				t.Fatalf("FreeProject is not deterministic: %d then %d (%v)", first, again, err)
			}
			dir := filepath.Join(mnt, "pvc-a")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := quota.SetProjectID(f, first); err != nil {
				t.Fatal(err)
			}
			if got, err := quota.ProjectID(f); err != nil || got != first {
				t.Fatalf("ProjectID = %d, %v; want %d", got, err, first)
			}
			next, err := fs.FreeProject("pvc-a")
			if err != nil {
				t.Fatal(err)
			}
			if next == first {
				t.Errorf("FreeProject returned %d, which %s already uses", next, dir)
			}
		})
	}
}
