package provisioner

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"

	"github.com/stowage-csi/stowage/pkg/metrics"
	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Annotations Kubernetes puts on claims.
const (
	annSelectedNode     = "volume.kubernetes.io/selected-node"
	annBetaStorageClass = "volume.beta.kubernetes.io/storage-class"
)

// provisioner is the library's Provisioner, Qualifier and DeletionGuard
// for one Stowage instance. Every instance serves the same provisioner name;
// the Qualifier and DeletionGuard split the work: the controller takes NFS
// claims and volumes, each node takes the local claims scheduled to it and
// the local volumes on it.
type provisioner struct {
	driverName string
	backend    string // volumeid.NFS or volumeid.Local
	nodeName   string // local only
	controller csi.ControllerServer
	classes    storagelisters.StorageClassLister
	pvs        corelisters.PersistentVolumeLister // for checkNotShared
	sources    *sources                           // data sources: restore and clone
}

var (
	_ controller.BlockProvisioner = (*provisioner)(nil)
	_ controller.Provisioner      = (*provisioner)(nil)
	_ controller.Qualifier        = (*provisioner)(nil)
	_ controller.DeletionGuard    = (*provisioner)(nil)
)

// ShouldProvision takes the claims that belong to this instance. The
// controller also takes local claims that no node will ever take (no
// selected node, because the class binds Immediately), so that someone
// tells the user why nothing happens.
func (p *provisioner) ShouldProvision(_ context.Context, claim *v1.PersistentVolumeClaim) bool {
	class, err := p.classes.Get(claimClass(claim))
	if err != nil || class.Provisioner != p.driverName {
		return false
	}
	local := class.Parameters[params.Backend] == volumeid.Local
	node := claim.Annotations[annSelectedNode]
	if p.backend == volumeid.Local {
		return local && node == p.nodeName
	}
	return !local || node == ""
}

// SupportsBlock lets block claims reach the driver, which decides what it
// supports and, if it refuses, says what to use instead; the library's own
// refusal ("does not support block volume provisioning") does not.
func (p *provisioner) SupportsBlock(context.Context) bool { return true }

// ShouldDelete takes the volumes this instance can reach.
func (p *provisioner) ShouldDelete(_ context.Context, pv *v1.PersistentVolume) bool {
	return pv.Spec.CSI != nil && pv.Spec.CSI.Driver == p.driverName && p.Owns(pv.Spec.CSI.VolumeHandle)
}

// Owns says whether this instance handles the volume with this handle: a
// node its own local volumes, the controller everything else (including
// handles it cannot read, so that their errors are reported once).
func (p *provisioner) Owns(handle string) bool {
	id, err := volumeid.Parse(handle)
	if p.backend == volumeid.Local {
		return err == nil && id.Backend == volumeid.Local && id.Node == p.nodeName
	}
	return err != nil || id.Backend != volumeid.Local
}

// Provision creates the volume through the driver and describes it as a PV.
func (p *provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (_ *v1.PersistentVolume, _ controller.ProvisioningState, err error) {
	defer func(start time.Time) { metrics.Observe(metrics.Provision, start, err) }(time.Now())
	logger := klog.FromContext(ctx).WithValues("claim", klog.KObj(opts.PVC), "pv", opts.PVName)
	policy, err := reclaimPolicy(opts.StorageClass)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	req, err := buildRequest(opts)
	if err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	if req.VolumeContentSource, err = p.contentSource(ctx, opts.PVC, req); err != nil {
		return nil, controller.ProvisioningFinished, err
	}
	logger.V(2).Info("Creating volume", "class", opts.StorageClass.Name, "bytes", req.GetCapacityRange().GetRequiredBytes(),
		"source", describeSource(req.GetVolumeContentSource()))
	resp, err := p.controller.CreateVolume(ctx, req)
	if err != nil {
		state := provisioningState(err, opts.SelectedNode != nil)
		logger.Error(err, "CreateVolume failed", "state", state)
		return nil, state, driverError(err)
	}
	if resp.GetVolume().GetVolumeId() == "" {
		return nil, controller.ProvisioningFinished, fmt.Errorf("driver returned no volume ID for %s; this is a bug in Stowage", opts.PVName)
	}
	pv := buildPV(p.driverName, opts, req, resp.GetVolume(), policy)
	logger.Info("Provisioned volume", "volumeID", resp.GetVolume().GetVolumeId(), "reclaimPolicy", policy)
	return pv, controller.ProvisioningFinished, nil
}

// contentSource is what a claim with a data source is filled from.
func (p *provisioner) contentSource(ctx context.Context, claim *v1.PersistentVolumeClaim, req *csi.CreateVolumeRequest) (*csi.VolumeContentSource, error) {
	if _, _, _, _, ok := dataSource(claim); !ok {
		return nil, nil
	}
	if p.sources == nil {
		return nil, fmt.Errorf("claim %s/%s has a dataSource, but this Stowage instance cannot read data sources; this is a bug in Stowage",
			claim.Namespace, claim.Name)
	}
	src, err := p.sources.contentSource(ctx, claim, req.GetCapacityRange().GetRequiredBytes())
	if err != nil {
		return nil, err
	}
	if err := checkSourceRoot(src, p.backend, p.nodeName); err != nil {
		return nil, fmt.Errorf("claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	return src, nil
}

// Delete removes the volume behind a released PV whose policy is Delete
// (the driver removes, archives or keeps the directory as the class said).
func (p *provisioner) Delete(ctx context.Context, pv *v1.PersistentVolume) (err error) {
	if !p.ShouldDelete(ctx, pv) {
		return &controller.IgnoredError{Reason: "the volume belongs to another Stowage instance or driver"}
	}
	defer func(start time.Time) { metrics.Observe(metrics.Delete, start, err) }(time.Now())
	if p.pvs != nil {
		if err := checkNotShared(p.pvs, p.driverName, pv); err != nil {
			return err
		}
	}
	handle := pv.Spec.CSI.VolumeHandle
	_, err = p.controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: handle})
	if status.Code(err) == codes.NotFound {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("delete volume %s of PV %s: %w", handle, pv.Name, driverError(err))
	}
	klog.FromContext(ctx).Info("Deleted volume", "pv", pv.Name, "volumeID", handle)
	return nil
}

// claimClass is the claim's class name, from the field or the old annotation.
func claimClass(claim *v1.PersistentVolumeClaim) string {
	if c, ok := claim.Annotations[annBetaStorageClass]; ok {
		return c
	}
	if claim.Spec.StorageClassName != nil {
		return *claim.Spec.StorageClassName
	}
	return ""
}
