package nfs

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Stores hands out a Store for an NFS share, reusing connections (Pool).
type Stores interface {
	Get(ctx context.Context, server, share string) (backend.Store, error)
}

// Backend serves volumes that are directories of NFS shares: made and
// removed in userspace (no mount, no privileges), mounted by the kernel on
// the nodes that use them.
type Backend struct {
	stores  Stores
	mounter mount.Interface // node side; nil in the controller
}

var _ backend.Backend = (*Backend)(nil)

// NewBackend reaches shares through stores and mounts with mounter (nil
// where nothing is mounted).
func NewBackend(stores Stores, mounter mount.Interface) *Backend {
	return &Backend{stores: stores, mounter: mounter}
}

func (b *Backend) Kind() string { return volumeid.NFS }

// AccessModes: every mode; a share is reachable from every node.
func (b *Backend) AccessModes() []csi.VolumeCapability_AccessMode_Mode {
	return append(slices.Clone(backend.SingleNodeModes),
		csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)
}

func (b *Backend) Topology(volumeid.ID) []*csi.Topology { return nil }

func (b *Backend) Placeable(*csi.TopologyRequirement) error { return nil }

func (b *Backend) Ready() error { return nil }

func (b *Backend) Store(ctx context.Context, id volumeid.ID) (backend.Store, error) {
	if b.stores == nil {
		return nil, status.Error(codes.FailedPrecondition, "the NFS backend is not enabled in this instance")
	}
	s, err := b.stores.Get(ctx, id.Server, id.Share)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "NFS share %s:%s: %v", id.Server, id.Share, err)
	}
	return s, nil
}

// Limit: an NFS server enforces no size per directory; the record's size
// is what usage is reported against.
func (b *Backend) Limit(context.Context, volumeid.ID, int64) (bool, error) { return false, nil }

// Capacity is the share's free space. Nothing is reserved: the server
// enforces no size per directory, and a share is often filled by others
// too, so a reservation would promise what the server does not keep.
func (b *Backend) Capacity(ctx context.Context, root volumeid.ID, _ func() ([]backend.Grant, error)) (int64, int64, error) {
	s, err := b.Store(ctx, root)
	if err != nil {
		return 0, 0, err
	}
	return s.Capacity(ctx)
}

// Usage counts what the volume holds through its mount at path, within a
// budget of files (usage.go).
func (b *Backend) Usage(ctx context.Context, _ volumeid.ID, path string) (backend.Usage, error) {
	return countTree(ctx, path, usageBudget)
}

// Mount mounts the volume's export directory on target with the kernel's
// NFS client; read-only when asked.
func (b *Backend) Mount(_ context.Context, id volumeid.ID, target string, flags []string, readOnly bool) error {
	if b.mounter == nil {
		return status.Error(codes.FailedPrecondition, "this instance does not mount NFS volumes; the node plugin does")
	}
	source, options := Source(id.Server, id.Share, id.Dir), flags
	if readOnly {
		options = append(slices.Clip(options), "ro")
	}
	if err := b.mounter.Mount(source, target, "nfs", options); err != nil {
		return status.Errorf(codes.Internal, "mount %s on %s: %v", source, target, err)
	}
	return nil
}

// Source is the mount source of an NFS export directory; an IPv6 address
// goes in brackets, or mount would take its last group for the path.
func Source(server, share, dir string) string {
	if strings.Contains(server, ":") && !strings.HasPrefix(server, "[") {
		server = "[" + server + "]"
	}
	return server + ":" + filepath.Join(share, dir)
}
