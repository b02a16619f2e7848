package driver

import (
	"context"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// GetCapacity reports what a class can still give: the local base path of
// this node, or the NFS share named by the parameters (see each backend's
// Capacity for what is reserved).
func (d *Driver) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	in := req.GetParameters()
	kind := in[params.Backend]
	if kind == "" && d.isNode() {
		kind = volumeid.Local // the node plugin's own kind (sanity asks without parameters)
	}
	if kind == "" {
		return nil, status.Error(codes.InvalidArgument, "GetCapacity needs the StorageClass parameters (backend, and server and share for NFS)")
	}
	b, err := d.backend(kind)
	if err != nil {
		return nil, err
	}
	root, err := d.classRoot(kind, in)
	if err != nil {
		return nil, err
	}
	for _, c := range req.GetVolumeCapabilities() {
		if err := checkCapability(b, c); err != nil {
			return &csi.GetCapacityResponse{}, nil // nothing can be made with these capabilities
		}
	}
	if seg := req.GetAccessibleTopology().GetSegments(); seg != nil {
		if n, ok := seg[TopologyKey]; ok && !reachableFrom(b.Topology(root), n) {
			return &csi.GetCapacityResponse{}, nil // another node's segment: nothing here
		}
	}
	total, avail, err := d.capacity(ctx, b, root)
	if err != nil {
		return nil, err
	}
	return &csi.GetCapacityResponse{AvailableCapacity: avail, MaximumVolumeSize: wrapInt64(min(total, avail))}, nil
}

// classRoot is the volume ID (without a directory) of the root a class's
// volumes live in.
func (d *Driver) classRoot(kind string, in map[string]string) (volumeid.ID, error) {
	root := volumeid.ID{Backend: kind, Node: d.opts.NodeID}
	if kind == volumeid.Local {
		return root, nil
	}
	p, err := params.Parse(in)
	if err != nil {
		return root, status.Error(codes.InvalidArgument, err.Error())
	}
	root.Server, root.Share = p.Server, p.Share
	return root, nil
}

// capacity asks the backend, giving it the sizes of the volumes of root.
func (d *Driver) capacity(ctx context.Context, b backend.Backend, root volumeid.ID) (total, avail int64, err error) {
	grants := func() ([]backend.Grant, error) {
		s, err := b.Store(ctx, root)
		if err != nil {
			return nil, err
		}
		recs, err := allRecords(ctx, s)
		if err != nil {
			return nil, err
		}
		var g []backend.Grant
		for _, r := range recs {
			// Kept data and complete snapshots no longer grow: their blocks
			// are out of the free space already.
			if !r.Retained && (r.Copying || !isSnapshotRecord(r)) {
				g = append(g, backend.Grant{Dir: r.Dir, Bytes: r.Capacity})
			}
		}
		return g, nil
	}
	total, avail, err = b.Capacity(ctx, root, grants)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return 0, 0, err
		}
		return 0, 0, storeError(err, "read the capacity of %s", root.Where())
	}
	return total, avail, nil
}

// rooms serializes "is there room" with the grant that follows, per root:
// two volumes created at once must not both take the last bytes.
type rooms struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (r *rooms) lock(root string) func() {
	r.mu.Lock()
	if r.locks == nil {
		r.locks = map[string]*sync.Mutex{}
	}
	l, ok := r.locks[root]
	if !ok {
		l = &sync.Mutex{}
		r.locks[root] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// reserveRoom checks that root can give more bytes and, if so, returns with
// root's room lock held: the caller writes its record (the grant) and then
// releases it.
func (d *Driver) reserveRoom(ctx context.Context, id volumeid.ID, more int64) (release func(), err error) {
	b, err := d.backend(id.Backend)
	if err != nil {
		return nil, err
	}
	root := volumeid.ID{Backend: id.Backend, Server: id.Server, Share: id.Share, Node: id.Node}
	release = d.rooms.lock(root.Where())
	_, avail, err := d.capacity(ctx, b, root)
	if err != nil {
		release()
		return nil, err
	}
	if avail < more {
		release()
		return nil, status.Errorf(codes.ResourceExhausted,
			"%d more bytes were asked for but only %d are available on %s (free space minus what its other volumes were given); ask for less or free space",
			more, avail, id.Where())
	}
	return release, nil
}
