package driver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// TestNodeGetVolumeStatsLocal: a local volume without a quota reports what
// it holds against its recorded size, not the whole disk.
func TestNodeGetVolumeStatsLocal(t *testing.T) {
	d, base := newLocalDriver(t)
	ctx := context.Background()
	v, err := d.CreateVolume(ctx, createReq("pvc-1", 8<<20, map[string]string{"backend": "local"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "pvc-1", "data"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	// The base path stands in for the published target: statfs is the same.
	r, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: v.Volume.VolumeId, VolumePath: filepath.Join(base, "pvc-1")})
	if err != nil {
		t.Fatal(err)
	}
	bytes := r.Usage[0]
	if bytes.Total != 8<<20 || bytes.Used < 1<<20 || bytes.Available != bytes.Total-bytes.Used {
		t.Fatalf("bytes = %+v, want total 8 MiB, at least 1 MiB used", bytes)
	}
	if r.Usage[1].Used < 2 { // the directory and the file
		t.Fatalf("inodes = %+v", r.Usage[1])
	}
	// The directory removed behind Kubernetes' back: NotFound, said plainly.
	if err := os.RemoveAll(filepath.Join(base, "pvc-1")); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: v.Volume.VolumeId, VolumePath: target}); code(err) != codes.NotFound {
		t.Fatalf("stats of a volume whose directory is gone: %v, want NotFound", err)
	}
}

// TestStatsCacheNeverBlocks: a measurement that hangs (a server that does
// not answer) costs a caller statsWait at most, and after statsStuck the
// volume is reported as not answering.
func TestStatsCacheNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := newStatsCache(func(ctx context.Context, _ volumeid.ID, _ string) (volumeStats, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return volumeStats{}, ctx.Err()
	})
	id := volumeid.ID{Backend: volumeid.NFS, Server: "10.0.0.5", Share: "/export", Dir: "x"}
	start := time.Now()
	_, err := c.get(context.Background(), id, "/p")
	if code(err) != codes.Unavailable {
		t.Fatalf("first call while the measurement hangs: %v, want Unavailable", err)
	}
	if waited := time.Since(start); waited > statsWait+time.Second {
		t.Fatalf("the call waited %s", waited)
	}
	// Pretend the measurement started long ago.
	c.mu.Lock()
	for _, e := range c.entries {
		e.started = time.Now().Add(-2 * statsStuck)
	}
	c.mu.Unlock()
	st, err := c.get(context.Background(), id, "/p")
	if err != nil || st.abnormal == nil || code(st.abnormal) != codes.Unavailable {
		t.Fatalf("stuck measurement: %+v, %v; want an Unavailable abnormal state", st, err)
	}
}
