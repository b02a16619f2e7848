package driver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"k8s.io/klog/v2"
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

var nodeCaps = []csi.NodeServiceCapability_RPC_Type{
	csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	if !d.isNode() {
		return nil, status.Error(codes.Unimplemented, "the node service runs in `stowage node`")
	}
	return &csi.NodeGetInfoResponse{
		NodeId:             d.opts.NodeID,
		AccessibleTopology: &csi.Topology{Segments: map[string]string{TopologyKey: d.opts.NodeID}},
	}, nil
}

func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, c := range nodeCaps {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: c}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, err := publishedVolume(req.GetVolumeId(), req.GetTargetPath(), "target path", req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	target := req.GetTargetPath()
	release, err := d.locks.acquire(id.String() + "@" + target)
	if err != nil {
		return nil, err
	}
	defer release()

	// Kubelet passes only the first access mode, and a pod may forget
	// readOnly: a read-only mode is enforced here, whatever the pod says.
	readOnly := req.GetReadonly() || readOnlyMode(req.GetVolumeCapability())
	if !readOnly {
		// The first mode may not be the claim's (claimmode.go).
		if readOnly, err = d.claimReadOnly(ctx, req); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "create target %s: %v", target, err)
	}
	// The mount table, not a device comparison: a bind mount from the same
	// filesystem has the same device as its target's parent, and a retried
	// publish would stack a second bind.
	mounted, err := d.opts.Mounter.IsMountPoint(target)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "check target %s: %v", target, err)
	}
	if mounted {
		klog.V(4).InfoS("Volume already published", "volumeID", id.String(), "target", target)
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if err := d.mountVolume(id, target, req.GetVolumeCapability().GetMount().GetMountFlags(), readOnly); err != nil {
		return nil, err
	}
	// ReadWriteOncePod: one target on this node at most. Kubernetes enforces
	// it too; checking the kernel's mount table keeps the promise for any
	// caller and across restarts of the node plugin.
	if req.GetVolumeCapability().GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		other, err := sameMountElsewhere(target)
		if err == nil && other == "" {
			klog.V(2).InfoS("Published volume", "volumeID", id.String(), "target", target, "readOnly", readOnly)
			return &csi.NodePublishVolumeResponse{}, nil
		}
		if cleanErr := mount.CleanupMountPoint(target, d.opts.Mounter, true); cleanErr != nil {
			klog.ErrorS(cleanErr, "Undoing a refused publish", "target", target)
		}
		if err != nil {
			return nil, status.Errorf(codes.Internal, "check where %s is published: %v", id.String(), err)
		}
		return nil, status.Errorf(codes.FailedPrecondition,
			"volume %s is ReadWriteOncePod and already published at %s; only one pod may use it", id.String(), other)
	}
	klog.V(2).InfoS("Published volume", "volumeID", id.String(), "target", target, "readOnly", readOnly)
	return &csi.NodePublishVolumeResponse{}, nil
}

// mountVolume mounts a volume on target.
func (d *Driver) mountVolume(id volumeid.ID, target string, flags []string, readOnly bool) error {
	switch id.Backend {
	case volumeid.NFS:
		source, options := nfsSource(id.Server, id.Share, id.Dir), flags
		if readOnly {
			options = append(slices.Clip(options), "ro")
		}
		if err := d.opts.Mounter.Mount(source, target, "nfs", options); err != nil {
			return status.Errorf(codes.Internal, "mount %s on %s: %v", source, target, err)
		}
		return nil
	case volumeid.Local:
		if d.opts.Local == nil || id.Node != d.opts.NodeID {
			return status.Errorf(codes.NotFound,
				"local volume %s lives on node %s, not on this node (%s)", id.String(), id.Node, d.opts.NodeID)
		}
		dir, err := d.opts.Local.OpenDir(id.Dir)
		if err != nil {
			return status.Errorf(codes.NotFound, "local volume %s: %v", id.String(), err)
		}
		defer dir.Close()
		bind := bindDir
		if readOnly {
			bind = bindReadOnly
		}
		if err := bind(dir, target); err != nil {
			return status.Errorf(codes.Internal, "mount local volume %s on %s: %v", id.String(), target, err)
		}
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "unknown backend %q", id.Backend)
}

// nfsSource is the mount source of an NFS export directory; an IPv6 address
// goes in brackets, or mount would take its last group for the path.
func nfsSource(server, share, dir string) string {
	if strings.Contains(server, ":") && !strings.HasPrefix(server, "[") {
		server = "[" + server + "]"
	}
	return server + ":" + filepath.Join(share, dir)
}

func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	case req.GetTargetPath() == "":
		return nil, status.Error(codes.InvalidArgument, "target path is missing")
	}
	release, err := d.locks.acquire(req.GetVolumeId() + "@" + req.GetTargetPath())
	if err != nil {
		return nil, err
	}
	defer release()
	// Unmounts if mounted, removes the directory, and succeeds if it is gone.
	if err := mount.CleanupMountPoint(req.GetTargetPath(), d.opts.Mounter, true); err != nil {
		return nil, status.Errorf(codes.Internal, "unmount %s: %v", req.GetTargetPath(), err)
	}
	klog.V(2).InfoS("Unpublished volume", "volumeID", req.GetVolumeId(), "target", req.GetTargetPath())
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	case req.GetVolumePath() == "":
		return nil, status.Error(codes.InvalidArgument, "volume path is missing")
	}
	id, err := volumeid.Parse(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist: %v", req.GetVolumeId(), err)
	}
	p := req.GetVolumePath()
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", p)
		}
		return nil, status.Errorf(codes.Internal, "stat %s: %v", p, err)
	}
	mounted, err := d.opts.Mounter.IsMountPoint(p)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "check %s: %v", p, err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil {
		return nil, status.Errorf(codes.Internal, "statfs %s: %v", p, err)
	}
	bytes := usage{
		total: int64(st.Blocks) * st.Bsize,
		avail: int64(st.Bavail) * st.Bsize,
		used:  int64(st.Blocks-st.Bfree) * st.Bsize,
	}
	inodes := usage{total: int64(st.Files), avail: int64(st.Ffree), used: int64(st.Files - st.Ffree)}
	if id.Backend == volumeid.Local && d.opts.Local != nil {
		// A local volume shares its filesystem with others: report what
		// this volume holds against the size it was given.
		bytes, inodes = d.localUsage(ctx, id, p, bytes, inodes)
	}
	if !mounted {
		klog.InfoS("Volume path is not a mount point; the pod may need a restart", "volumeID", id.String(), "path", p)
	}
	return &csi.NodeGetVolumeStatsResponse{
		Usage: []*csi.VolumeUsage{
			{Unit: csi.VolumeUsage_BYTES, Total: bytes.total, Available: bytes.avail, Used: bytes.used},
			{Unit: csi.VolumeUsage_INODES, Total: inodes.total, Available: inodes.avail, Used: inodes.used},
		},
	}, nil
}

type usage struct{ total, avail, used int64 }

// localUsage walks the volume to count what it holds.
func (d *Driver) localUsage(ctx context.Context, id volumeid.ID, p string, fsBytes, fsInodes usage) (usage, usage) {
	if d.opts.Quota != nil {
		// With a project quota, statfs already reports the volume's limit
		// as its size; the quota's accounting gives what it holds.
		if b, n, err := d.opts.Quota.Usage(ctx, id.Dir); err == nil {
			return usage{total: fsBytes.total, avail: fsBytes.avail, used: b},
				usage{total: fsInodes.total, avail: fsInodes.avail, used: n}
		}
	}
	var used, files int64
	_ = filepath.WalkDir(p, func(_ string, e fs.DirEntry, err error) error {
		if err != nil || ctx.Err() != nil {
			return nil
		}
		files++
		if info, err := e.Info(); err == nil {
			if s, ok := info.Sys().(*syscall.Stat_t); ok {
				used += s.Blocks * 512
			}
		}
		return nil
	})
	total := fsBytes.total
	if rec, err := readRecord(ctx, d.opts.Local, id.Dir); err == nil && rec != nil && rec.Capacity > 0 {
		total = rec.Capacity
	}
	avail := max(0, min(total-used, fsBytes.avail))
	return usage{total: total, avail: avail, used: used},
		usage{total: fsInodes.total, avail: fsInodes.avail, used: files}
}

func wrapInt64(v int64) *wrapperspb.Int64Value { return wrapperspb.Int64(v) }
