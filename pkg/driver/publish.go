package driver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ControllerPublishVolume makes attach possible: with the CSIDriver's
// attachRequired, Kubernetes itself then refuses to attach a single-node
// volume to a second node (Multi-Attach). The driver checks that the volume
// and node exist and that a local volume is asked for on its own node.
func (d *Driver) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	id, err := d.publishedVolume(req.GetVolumeId(), req.GetNodeId(), "node ID", req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	if d.opts.NodeExists != nil {
		ok, err := d.opts.NodeExists(ctx, req.GetNodeId())
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "check node %s: %v", req.GetNodeId(), err)
		}
		if !ok {
			return nil, status.Errorf(codes.NotFound, "node %s does not exist", req.GetNodeId())
		}
	}
	if !reachableFrom(d.backends[id.Backend].Topology(id), req.GetNodeId()) {
		return nil, status.Errorf(codes.FailedPrecondition,
			"%s volume %s lives on %s and cannot be used on node %s; schedule the pod there or use an NFS StorageClass",
			id.Backend, req.GetVolumeId(), id.Where(), req.GetNodeId())
	}
	// Where this instance can see the volume, make sure it is there.
	if _, err := d.store(ctx, id); err == nil {
		if _, err := d.existingVolume(ctx, req.GetVolumeId()); err != nil {
			return nil, err
		}
	}
	return &csi.ControllerPublishVolumeResponse{}, nil
}

// ControllerUnpublishVolume has nothing to undo: attach keeps no state in
// the driver, Kubernetes' VolumeAttachment object is the record.
func (d *Driver) ControllerUnpublishVolume(_ context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID is missing")
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

// reachableFrom reports whether a node is inside a volume's topology (nil:
// every node).
func reachableFrom(topology []*csi.Topology, node string) bool {
	if topology == nil {
		return true
	}
	for _, t := range topology {
		if t.GetSegments()[TopologyKey] == node {
			return true
		}
	}
	return false
}
