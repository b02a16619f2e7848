package driver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// volumeStats is one measurement of a published volume.
type volumeStats struct {
	usage backend.Usage
	size  int64            // the recorded size; 0 for a volume without a record
	fs    syscall.Statfs_t // of the published path: the fallback totals
	// abnormal, when set, is what is wrong with the volume, as the status
	// the call returns. CSI had a volume_condition field for this; the spec
	// removed it (v1.13), so kubelet learns of it as an error it logs.
	abnormal error
}

func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	case req.GetVolumePath() == "":
		return nil, status.Error(codes.InvalidArgument, "volume path is missing")
	}
	id, err := d.nodeVolumeID(req.GetVolumeId()) // an inline volume's too
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist: %v", req.GetVolumeId(), err)
	}
	if _, err := d.backend(id.Backend); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s: %v", req.GetVolumeId(), status.Convert(err).Message())
	}
	p := req.GetVolumePath()
	// Lstat of the target itself never waits on a server: the mount point
	// is a directory of kubelet's, whatever is mounted on it.
	if _, err := os.Lstat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", p)
		}
		return nil, status.Errorf(codes.Internal, "stat %s: %v", p, err)
	}
	st, err := d.stats.get(ctx, id, p)
	if err != nil {
		return nil, err
	}
	if st.abnormal != nil {
		return nil, st.abnormal
	}
	return st.response(), nil
}

// response turns a measurement into CSI's answer: a volume's size is its
// enforced limit, else its recorded size, else its filesystem's.
func (st volumeStats) response() *csi.NodeGetVolumeStatsResponse {
	bsize := st.fs.Bsize
	fsTotal, fsAvail := int64(st.fs.Blocks)*bsize, int64(st.fs.Bavail)*bsize
	total := firstSet(st.usage.ByteLimit, st.size, fsTotal)
	inodes := firstSet(st.usage.InodeLimit, int64(st.fs.Files))
	return &csi.NodeGetVolumeStatsResponse{
		Usage: []*csi.VolumeUsage{
			{Unit: csi.VolumeUsage_BYTES, Total: total, Used: st.usage.Bytes,
				Available: max(0, min(total-st.usage.Bytes, fsAvail))},
			{Unit: csi.VolumeUsage_INODES, Total: inodes, Used: st.usage.Inodes,
				Available: max(0, min(inodes-st.usage.Inodes, int64(st.fs.Ffree)))},
		},
	}
}

func firstSet(v ...int64) int64 {
	for _, x := range v {
		if x > 0 {
			return x
		}
	}
	return 0
}

// measure takes one measurement; it may wait on the storage (statsCache
// bounds how long a caller waits for it).
func (d *Driver) measure(ctx context.Context, id volumeid.ID, path string) (volumeStats, error) {
	var st volumeStats
	if err := syscall.Statfs(path, &st.fs); err != nil {
		return st, fmt.Errorf("statfs %s: %w", path, err)
	}
	b := d.backends[id.Backend]
	store, err := b.Store(ctx, id)
	if err != nil {
		return st, err
	}
	rec, err := readRecord(ctx, store, id.Dir)
	if err != nil {
		return st, fmt.Errorf("read the record of %s: %w", id.Dir, err)
	}
	if rec != nil {
		st.size = rec.Capacity
	}
	exists, err := store.Exists(ctx, id.Dir)
	if err != nil {
		return st, fmt.Errorf("check %s: %w", id.Dir, err)
	}
	if !exists {
		st.abnormal = status.Errorf(codes.NotFound, "volume %s is abnormal: its directory %s is gone from %s (removed outside Kubernetes); its pods see a stale directory. Restore the data or delete the claim", id.String(), id.Dir, id.Where())
		return st, nil
	}
	if st.usage, err = b.Usage(ctx, id, path); err != nil {
		return st, fmt.Errorf("measure %s: %w", id.Dir, err)
	}
	return st, nil
}

func wrapInt64(v int64) *wrapperspb.Int64Value { return wrapperspb.Int64(v) }
