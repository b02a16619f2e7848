// Package driver implements the CSI Identity, Controller and Node services of
// Stowage. The driver is stateless: the volume ID carries everything needed
// to find a volume again (see pkg/volumeid), and small records next to the
// volumes (under .stowage/ in the share or base path) make CreateVolume
// idempotent.
package driver

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
)

// TopologyKey is the topology segment that pins local volumes to their node.
const TopologyKey = "topology.stowage.io/node"

// DefaultCapacity is what a volume gets when the request names no size.
const DefaultCapacity int64 = 1 << 30

// NFSStores hands out a Store for an NFS share, reusing connections.
type NFSStores interface {
	Get(ctx context.Context, server, share string) (backend.Store, error)
}

// NodeChecker reports whether a node ID names a node of the cluster.
type NodeChecker func(ctx context.Context, nodeID string) (bool, error)

// Options configure a Driver.
type Options struct {
	Name    string // CSI driver name, e.g. csi.stowage.io
	Version string

	// NodeID is set in node mode: the driver then serves the Node service
	// and creates local volumes on this node.
	NodeID string
	// Local is the local volume store of this node (node mode only).
	Local *local.Store
	// Quota enforces local volume sizes where the base path's filesystem
	// supports project quotas; nil means sizes are not enforced.
	Quota backend.Quota
	// NFS reaches NFS shares in userspace; nil disables the NFS backend's
	// controller side.
	NFS NFSStores
	// Mounter mounts volumes on the node (node mode only).
	Mounter mount.Interface
	// NodeExists, if set, lets ControllerPublishVolume refuse unknown nodes.
	NodeExists NodeChecker
	// ClaimAccessModes, if set, returns the access modes of the claim bound
	// to PV pvName after checking that the PV carries volumeID (wrapping
	// ErrNotTheClaim if not). NodePublishVolume asks it for volumes made for
	// ReadOnlyMany and other modes (claimmode.go); nil mounts those in the
	// mode kubelet passes.
	ClaimAccessModes func(ctx context.Context, pvName, volumeID string) ([]string, error)
}

// Driver serves the three CSI services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	opts  Options
	locks *locks
	names *nameIndex
}

// New checks the options and makes a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Name == "" {
		return nil, fmt.Errorf("driver name is empty")
	}
	if opts.NodeID != "" && opts.Mounter == nil {
		opts.Mounter = mount.New("")
	}
	if opts.NodeID == "" && opts.Local != nil {
		return nil, fmt.Errorf("a local base path needs a node ID")
	}
	return &Driver{opts: opts, locks: newLocks(), names: newNameIndex()}, nil
}

// isNode reports whether this instance serves the Node service.
func (d *Driver) isNode() bool { return d.opts.NodeID != "" }
