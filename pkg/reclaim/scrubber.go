// Package reclaim implements the Recycle reclaim policy for Stowage volumes.
//
// Kubernetes recycles only in-tree NFS and hostPath volumes; a CSI volume with
// policy Recycle is marked "Failed: No recycler plugin found for the volume!"
// and stays that way. The Recycler here takes over: it watches this driver's
// PVs that are Released (or Failed for that reason), empties the volume's
// directory through a Scrubber, and unbinds the PV so that it becomes
// Available for the next matching claim.
package reclaim

import "context"

// Scrubber empties a volume's directory and keeps the directory itself. It
// must be idempotent: the recycler calls it again after a crash or an error.
type Scrubber interface {
	ScrubVolume(ctx context.Context, volumeID string) error
}
