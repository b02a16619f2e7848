package driver

import (
	"context"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
	mount "k8s.io/mount-utils"
)

var nodeCaps = []csi.NodeServiceCapability_RPC_Type{
	csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	if !d.isNode() {
		return nil, status.Error(codes.Unimplemented, "the node service runs in `stowage node`")
	}
	// Kubelet asks once per start of the plugin: a good moment to clear
	// inline volumes whose pods went while the plugin was away.
	d.inlineSweep.Do(func() { go d.sweepInlineInBackground() })
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
	if inline, err := isInline(req); err != nil || inline {
		if err != nil {
			return nil, err
		}
		return d.publishInline(ctx, req) // ephemeral.go
	}
	id, err := d.publishedVolume(req.GetVolumeId(), req.GetTargetPath(), "target path", req.GetVolumeCapability())
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
	if err := d.backends[id.Backend].Mount(ctx, id, target, req.GetVolumeCapability().GetMount().GetMountFlags(), readOnly); err != nil {
		return nil, err
	}
	// ReadWriteOncePod: one target on this node at most. Kubernetes enforces
	// it too; checking the kernel's mount table keeps the promise for any
	// caller and across restarts of the node plugin.
	if req.GetVolumeCapability().GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		other, err := d.opts.OtherMount(target)
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

func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
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
	d.stats.forget(req.GetVolumeId(), req.GetTargetPath())
	// An inline volume goes with its pod (ephemeral.go).
	if err := d.unpublishInline(ctx, req.GetVolumeId(), req.GetTargetPath()); err != nil {
		return nil, err
	}
	klog.V(2).InfoS("Unpublished volume", "volumeID", req.GetVolumeId(), "target", req.GetTargetPath())
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
