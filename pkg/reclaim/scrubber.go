// Package reclaim implements the Recycle reclaim policy for Stowage volumes.
//
// Kubernetes recycles only in-tree NFS and hostPath volumes; a CSI volume with
// policy Recycle is marked "Failed: No recycler plugin found for the volume!"
// and stays that way. The Recycler here takes over: it watches this driver's
// PVs that are Released (or Failed for that reason), takes a lease on the PV
// (lease.go), empties the volume's directory through a Scrubber while it
// holds the lease and the PV stays as it was (fence.go), and unbinds the PV
// so that it becomes Available for the next matching claim.
package reclaim

import "context"

// Scrubber empties a volume's directory and keeps the directory itself. It
// must be idempotent: the recycler calls it again after a crash or an error.
//
// pvName is the PV the recycler is scrubbing for: the scrubber checks that
// the volume's own record names that PV, so that a handle copied into
// another PV cannot get someone else's volume emptied. ctx is cancelled the
// moment the PV stops being the recycler's to scrub (its claimRef changed,
// the lease was lost); the scrubber must stop removing files promptly then.
type Scrubber interface {
	ScrubVolume(ctx context.Context, volumeID, pvName string) error
}
