// Package driver implements the CSI Identity, Controller and Node services of
// Stowage. The driver is stateless: the volume ID carries everything needed
// to find a volume again (see pkg/volumeid), and small records next to the
// volumes (under .stowage/ in the share or base path) make CreateVolume
// idempotent.
package driver

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// TopologyKey is the topology segment that pins local volumes to their node.
const TopologyKey = backend.TopologyKey

// DefaultCapacity is what a volume gets when the request names no size.
const DefaultCapacity int64 = 1 << 30

// NodeChecker reports whether a node ID names a node of the cluster.
type NodeChecker func(ctx context.Context, nodeID string) (bool, error)

// Options configure a Driver.
type Options struct {
	Name    string // CSI driver name, e.g. csi.stowage.io
	Version string

	// NodeID is set in node mode: the driver then serves the Node service
	// and creates local volumes on this node.
	NodeID string
	// Backends are the kinds of storage this instance serves (pkg/backend/
	// local, pkg/backend/nfs), one per kind.
	Backends []backend.Backend
	// Mounter checks and removes publish targets (node mode only).
	Mounter mount.Interface
	// OtherMount returns another mount point that shows the same directory
	// as target, or ""; nil reads the kernel's mount table (mounts.go).
	OtherMount func(target string) (string, error)
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

	opts     Options
	backends map[string]backend.Backend
	locks    *locks
	names    *nameIndex
	stats    *statsCache
	rooms    rooms
	copies   *copies // snapshots, restores and clones in progress
	roots    *roots  // roots this instance has served, for ListSnapshots
	// inlineSweep runs SweepInline once per process (ephemeral.go).
	inlineSweep sync.Once
}

// New checks the options and makes a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Name == "" {
		return nil, fmt.Errorf("driver name is empty")
	}
	if opts.NodeID != "" && opts.Mounter == nil {
		opts.Mounter = mount.New("")
	}
	if opts.OtherMount == nil {
		opts.OtherMount = sameMountElsewhere
	}
	d := &Driver{opts: opts, backends: map[string]backend.Backend{}, locks: newLocks(), names: newNameIndex(), copies: newCopies(), roots: &roots{}}
	for _, b := range opts.Backends {
		if _, dup := d.backends[b.Kind()]; dup {
			return nil, fmt.Errorf("two backends of kind %q", b.Kind())
		}
		d.backends[b.Kind()] = b
	}
	d.stats = newStatsCache(d.measure)
	return d, nil
}

// backend returns the backend of a kind, or a status error naming the kinds
// this instance serves.
func (d *Driver) backend(kind string) (backend.Backend, error) {
	if b, ok := d.backends[kind]; ok {
		return b, nil
	}
	if kind == "" {
		return nil, status.Error(codes.InvalidArgument, "the backend is not named; set the StorageClass parameter backend")
	}
	// Class parameters name only known kinds (pkg/params): this instance
	// is the wrong one to ask.
	return nil, status.Errorf(codes.FailedPrecondition, "backend %q is not served by this instance of Stowage (it serves %s)", kind, d.kinds())
}

func (d *Driver) kinds() string {
	var k []string
	for name := range d.backends {
		k = append(k, name)
	}
	sort.Strings(k)
	return strings.Join(k, ", ")
}

// isNode reports whether this instance serves the Node service.
func (d *Driver) isNode() bool { return d.opts.NodeID != "" }
