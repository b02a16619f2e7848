package provisioner

import (
	"fmt"
	"maps"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller"

	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// topologyKey pins local volumes to their node; the driver uses the same
// key (driver.TopologyKey, checked by a test) in NodeGetInfo and in the
// volume's accessible topology.
const topologyKey = "topology.stowage.io/node"

// csiModes maps a Kubernetes access mode to the CSI mode asked of the driver.
var csiModes = map[v1.PersistentVolumeAccessMode]csi.VolumeCapability_AccessMode_Mode{
	v1.ReadWriteOnce:    csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
	v1.ReadOnlyMany:     csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
	v1.ReadWriteMany:    csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER,
	v1.ReadWriteOncePod: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
}

// checkClass refuses claims that can never be provisioned as the class is
// written, with a message that says how to fix the class.
func checkClass(class *storagev1.StorageClass) error {
	if class.Parameters[params.Backend] != volumeid.Local {
		return nil
	}
	if class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return fmt.Errorf("StorageClass %q uses backend local with volumeBindingMode Immediate, but a local volume must be "+
			"created on the node that runs the pod, which is only known once a pod is scheduled; "+
			"set volumeBindingMode: WaitForFirstConsumer in the StorageClass (recreate it: the field is immutable)", class.Name)
	}
	return nil
}

// checkClaim refuses claims whose shape Stowage cannot provision at all.
func checkClaim(claim *v1.PersistentVolumeClaim) error {
	switch {
	case claim.Spec.Selector != nil:
		return fmt.Errorf("claim %s/%s has a selector, which dynamic provisioning cannot honour; "+
			"remove spec.selector, or bind the claim to a pre-made PV", claim.Namespace, claim.Name)
	case len(claim.Spec.AccessModes) == 0:
		return fmt.Errorf("claim %s/%s has no accessModes; set one of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod",
			claim.Namespace, claim.Name)
	}
	for _, m := range claim.Spec.AccessModes {
		if _, ok := csiModes[m]; !ok {
			return fmt.Errorf("claim %s/%s asks for access mode %q, which Kubernetes does not define; "+
				"use ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod", claim.Namespace, claim.Name, m)
		}
	}
	return nil
}

// buildRequest turns a claim and its class into the driver's CreateVolume
// request: the PV name as volume name, the claim's size, one capability per
// access mode, and the class parameters plus the claim's and PV's names
// (subDir templates use them).
func buildRequest(opts controller.ProvisionOptions) (*csi.CreateVolumeRequest, error) {
	claim, class := opts.PVC, opts.StorageClass
	if err := checkClaim(claim); err != nil {
		return nil, err
	}
	if err := checkClass(class); err != nil {
		return nil, err
	}
	size, ok := claim.Spec.Resources.Requests[v1.ResourceStorage]
	if !ok {
		return nil, fmt.Errorf("claim %s/%s has no storage request; set spec.resources.requests.storage", claim.Namespace, claim.Name)
	}
	capRange := &csi.CapacityRange{RequiredBytes: size.Value()}
	if limit, ok := claim.Spec.Resources.Limits[v1.ResourceStorage]; ok {
		capRange.LimitBytes = limit.Value()
	}

	parameters := maps.Clone(class.Parameters)
	if parameters == nil {
		parameters = map[string]string{}
	}
	parameters[params.PVCName] = claim.Name
	parameters[params.PVCNamespace] = claim.Namespace
	parameters[params.PVName] = opts.PVName

	req := &csi.CreateVolumeRequest{
		Name:               opts.PVName,
		CapacityRange:      capRange,
		VolumeCapabilities: capabilities(claim, class.MountOptions),
		Parameters:         parameters,
	}
	if opts.SelectedNode != nil {
		// Only the selected node will do: that is where the pod goes.
		t := &csi.Topology{Segments: map[string]string{topologyKey: opts.SelectedNode.Name}}
		req.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{t}, Preferred: []*csi.Topology{t}}
	}
	return req, nil
}

// capabilities lists one CSI capability per access mode of the claim, with
// the claim's volumeMode and the class's mount options.
func capabilities(claim *v1.PersistentVolumeClaim, mountOptions []string) []*csi.VolumeCapability {
	block := claim.Spec.VolumeMode != nil && *claim.Spec.VolumeMode == v1.PersistentVolumeBlock
	var caps []*csi.VolumeCapability
	for _, m := range claim.Spec.AccessModes {
		c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: csiModes[m]}}
		if block {
			c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		} else {
			c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{MountFlags: mountOptions}}
		}
		caps = append(caps, c)
	}
	return caps
}

// reclaimPolicy is the class's policy, unless the class parameter
// reclaimPolicy asks for Recycle, which the StorageClass field itself does
// not accept.
func reclaimPolicy(class *storagev1.StorageClass) (v1.PersistentVolumeReclaimPolicy, error) {
	if v, ok := class.Parameters[params.ReclaimPolicy]; ok {
		if v != string(v1.PersistentVolumeReclaimRecycle) {
			return "", fmt.Errorf("StorageClass %q parameter %s=%q is not supported; only Recycle goes here "+
				"(set Delete or Retain in the StorageClass's own reclaimPolicy field)", class.Name, params.ReclaimPolicy, v)
		}
		return v1.PersistentVolumeReclaimRecycle, nil
	}
	if class.ReclaimPolicy != nil {
		return *class.ReclaimPolicy, nil
	}
	return v1.PersistentVolumeReclaimDelete, nil
}
