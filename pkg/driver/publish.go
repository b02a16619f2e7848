package driver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// ControllerPublishVolume makes attach possible: with the CSIDriver's
// attachRequired, Kubernetes itself then refuses to attach a single-node
// volume to a second node (Multi-Attach). The driver checks that the volume
// and node exist and that a local volume is asked for on its own node.
func (d *Driver) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	id, err := publishedVolume(req.GetVolumeId(), req.GetNodeId(), "node ID", req.GetVolumeCapability())
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
	if id.Backend == volumeid.Local && id.Node != req.GetNodeId() {
		return nil, status.Errorf(codes.FailedPrecondition,
			"local volume %s lives on node %s and cannot be used on node %s; schedule the pod there or use an NFS StorageClass",
			req.GetVolumeId(), id.Node, req.GetNodeId())
	}
	// Where this instance can see the volume, make sure it is there.
	if id.Backend == volumeid.NFS || id.Node == d.opts.NodeID {
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

// GetCapacity reports the free space behind a class: the local base path of
// this node, or the NFS share named by the parameters.
func (d *Driver) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	in := req.GetParameters()
	backendName := in[params.Backend]
	if backendName == "" && d.opts.Local != nil {
		backendName = volumeid.Local
	}
	var id volumeid.ID
	switch backendName {
	case volumeid.Local:
		id = volumeid.ID{Backend: volumeid.Local, Node: d.opts.NodeID}
	case volumeid.NFS:
		p, err := params.Parse(in)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		id = volumeid.ID{Backend: volumeid.NFS, Server: p.Server, Share: p.Share}
	default:
		return nil, status.Error(codes.InvalidArgument, "GetCapacity needs the StorageClass parameters (backend, and server and share for NFS)")
	}
	for _, c := range req.GetVolumeCapabilities() {
		if err := checkCapability(backendName, c); err != nil {
			return &csi.GetCapacityResponse{}, nil // nothing can be made with these capabilities
		}
	}
	store, err := d.store(ctx, id)
	if err != nil {
		return nil, err
	}
	total, avail, err := store.Capacity(ctx)
	if err != nil {
		return nil, storeError(err, "read the capacity of %s", where(id))
	}
	return &csi.GetCapacityResponse{AvailableCapacity: avail, MaximumVolumeSize: wrapInt64(total)}, nil
}
