package local

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Backend serves the local volumes of one node: a base path on its disk,
// sizes enforced with project quotas where the filesystem has them.
type Backend struct {
	node  string
	store *Store // nil where this instance has no base path (the controller)
	quota *Quota // nil where sizes cannot be enforced
}

var _ backend.Backend = (*Backend)(nil)

// NewBackend serves node's volumes from store (nil: none here), enforcing
// sizes with quota (nil: not enforced).
func NewBackend(node string, store *Store, quota *Quota) *Backend {
	return &Backend{node: node, store: store, quota: quota}
}

func (b *Backend) Kind() string { return volumeid.Local }

// AccessModes: a volume on one node's disk serves that node only.
func (b *Backend) AccessModes() []csi.VolumeCapability_AccessMode_Mode {
	return backend.SingleNodeModes
}

func (b *Backend) Topology(id volumeid.ID) []*csi.Topology {
	return []*csi.Topology{{Segments: map[string]string{backend.TopologyKey: id.Node}}}
}

// Placeable refuses a volume that the caller requires on other nodes: it
// can only be made on this one.
func (b *Backend) Placeable(req *csi.TopologyRequirement) error {
	if len(req.GetRequisite()) == 0 {
		return nil
	}
	for _, t := range req.GetRequisite() {
		if n, ok := t.GetSegments()[backend.TopologyKey]; !ok || n == b.node {
			return nil
		}
	}
	return status.Errorf(codes.ResourceExhausted, "local volumes can only be created on node %s, which the requested topology excludes", b.node)
}

// Ready checks that the base path is still the one opened at start.
func (b *Backend) Ready() error {
	if b.store == nil {
		return nil
	}
	if err := b.store.Check(); err != nil {
		return status.Errorf(codes.FailedPrecondition, "local base path %s is not usable on node %s: %v; check the disk mounted there or the node plugin's --local-base-path", b.store.Base(), b.node, err)
	}
	return nil
}

// Store is this node's base path, for this node's volumes only.
func (b *Backend) Store(_ context.Context, id volumeid.ID) (backend.Store, error) {
	if b.store == nil {
		return nil, status.Errorf(codes.FailedPrecondition,
			"local volumes are handled by the stowage node plugin on their node (%s), not by this instance", id.Node)
	}
	if id.Node != b.node {
		return nil, status.Errorf(codes.FailedPrecondition, "local volume lives on node %s; this is node %s", id.Node, b.node)
	}
	if err := b.Ready(); err != nil {
		return nil, err
	}
	return b.store, nil
}

// Limit sets the directory's project quota, online: a running pod sees the
// new size at once (growing needs no node step).
func (b *Backend) Limit(ctx context.Context, id volumeid.ID, bytes int64) (bool, error) {
	if b.quota == nil {
		return false, nil
	}
	return true, b.quota.SetQuota(ctx, id.Dir, bytes)
}

// Capacity is the free space of the base path minus what volumes were given
// and have not used yet: a node never promises the same bytes twice, so
// claims created at once cannot over-place. Where quotas are missing the
// use of a volume is not known cheaply and its whole size stays reserved.
func (b *Backend) Capacity(ctx context.Context, root volumeid.ID, grants func() ([]backend.Grant, error)) (int64, int64, error) {
	s, err := b.Store(ctx, root)
	if err != nil {
		return 0, 0, err
	}
	total, free, err := s.Capacity(ctx)
	if err != nil {
		return 0, 0, err
	}
	given, err := grants()
	if err != nil {
		return 0, 0, err
	}
	for _, g := range given {
		var used int64
		if b.quota != nil {
			if u, err := b.quota.Measure(ctx, g.Dir); err == nil {
				used = u.Bytes
			}
		}
		free -= max(0, g.Bytes-used)
	}
	return total, max(0, free), nil
}

// Usage reads the quota's accounting, or walks the directory where sizes
// are not enforced.
func (b *Backend) Usage(ctx context.Context, id volumeid.ID, _ string) (backend.Usage, error) {
	if _, err := b.Store(ctx, id); err != nil {
		return backend.Usage{}, err
	}
	if b.quota != nil {
		u, err := b.quota.Measure(ctx, id.Dir)
		return backend.Usage{Bytes: u.Bytes, Inodes: u.Inodes, ByteLimit: u.Limit, InodeLimit: u.InodeLimit}, err
	}
	n, files, err := WalkUsage(ctx, b.store, id.Dir)
	return backend.Usage{Bytes: n, Inodes: files}, err
}

// Mount binds the volume's directory on target from a descriptor opened
// without following symlinks (bind.go).
func (b *Backend) Mount(_ context.Context, id volumeid.ID, target string, _ []string, readOnly bool) error {
	if b.store == nil || id.Node != b.node {
		return status.Errorf(codes.NotFound, "local volume %s lives on node %s, not on this node (%s)", id.String(), id.Node, b.node)
	}
	dir, err := b.store.OpenDir(id.Dir)
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
