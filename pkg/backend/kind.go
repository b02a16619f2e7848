package backend

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// TopologyKey is the topology segment that names a node: every node plugin
// reports it, and it pins a local volume to its node.
const TopologyKey = "topology.stowage.io/node"

// Backend is one kind of storage (local disk, NFS): everything in which the
// kinds differ, so that the driver dispatches once by kind and a new kind is
// one new package. Rules every kind obeys (who owns a directory, records,
// bounded removal) live in the driver and in Store's contract, not here.
type Backend interface {
	// Kind is the name used in volume IDs and the class parameter backend.
	Kind() string
	// Store returns the store that holds id's directory, or a gRPC status
	// error that says why this instance cannot reach it.
	Store(ctx context.Context, id volumeid.ID) (Store, error)
	// AccessModes are the CSI access modes a volume of this kind honours.
	AccessModes() []csi.VolumeCapability_AccessMode_Mode
	// Topology is where a volume can be used; nil means every node.
	Topology(id volumeid.ID) []*csi.Topology
	// Placeable reports whether a new volume can be made here under the
	// caller's topology requirement; a gRPC status error says why not.
	Placeable(req *csi.TopologyRequirement) error
	// Ready reports whether this instance can serve the kind's volumes.
	Ready() error
	// Limit enforces size on id's directory where the kind can (a project
	// quota on local disk); it reports whether the size is enforced.
	Limit(ctx context.Context, id volumeid.ID, bytes int64) (enforced bool, err error)
	// Capacity reports what the store of root (a volume ID without a
	// directory) holds in all and what new volumes may still take; grants
	// lists the sizes already given to volumes there, for kinds that
	// reserve them (called only if needed).
	Capacity(ctx context.Context, root volumeid.ID, grants func() ([]Grant, error)) (total, allocatable int64, err error)
	// Usage measures what id's directory holds; path is where it is
	// published on this node. It may be slow: callers cache it.
	Usage(ctx context.Context, id volumeid.ID, path string) (Usage, error)
	// Mount publishes id's directory on target (node side).
	Mount(ctx context.Context, id volumeid.ID, target string, flags []string, readOnly bool) error
}

// Usage is what a volume holds. A zero limit means "not known here": the
// caller falls back to the volume's recorded size.
type Usage struct {
	Bytes, Inodes         int64 // used
	ByteLimit, InodeLimit int64 // enforced limits, 0 if none
	// Partial is set when the count stopped early (too many files to count
	// within the budget); Bytes and Inodes are then lower bounds.
	Partial bool
}

// SingleNodeModes are the access modes that keep a volume on one node: all a
// volume on one node's disk can honour, and part of what a share can.
var SingleNodeModes = []csi.VolumeCapability_AccessMode_Mode{
	csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER,
}

// Grant is the size given to one volume directory.
type Grant struct {
	Dir   string
	Bytes int64
}
