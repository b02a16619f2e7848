package driver

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// ContextAccessModes is the volume context key that lists the access modes a
// volume was made for, comma-separated Kubernetes names such as
// "ReadWriteMany,ReadOnlyMany". Kubelet passes NodePublishVolume only the
// PV's first mode; a PV made for [ReadWriteMany, ReadOnlyMany], recycled and
// bound again by a ReadOnlyMany claim would be mounted read-write without it.
const ContextAccessModes = "accessModes"

const readOnlyMany = "ReadOnlyMany"

// ErrNotTheClaim is wrapped by a ClaimAccessModes lookup when the PV does not
// carry the volume being published, or its claim is not the one bound to it.
var ErrNotTheClaim = errors.New("the persistent volume or its claim does not match the volume being published")

// contextModeName is the Kubernetes name of each CSI access mode as the
// external-provisioner translates it. SINGLE_NODE_READER_ONLY has no
// Kubernetes name and is left out.
var contextModeName = map[csi.VolumeCapability_AccessMode_Mode]string{
	csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER:        "ReadWriteOnce",
	csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:  "ReadWriteOnce",
	csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER: "ReadWriteOncePod",
	csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:    readOnlyMany,
	csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER:  "ReadWriteMany",
	csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:   "ReadWriteMany",
}

// accessModesContext renders the value of ContextAccessModes for the
// capabilities of a CreateVolume request, in their order, without repeats.
func accessModesContext(caps []*csi.VolumeCapability) string {
	var names []string
	for _, c := range caps {
		if n, ok := contextModeName[c.GetAccessMode().GetMode()]; ok && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// claimReadOnly reports whether a volume kubelet asks to mount read-write
// must be mounted read-only because the claim using it is ReadOnlyMany. Only
// a volume made for ReadOnlyMany together with other modes can be in that
// case; for it, not knowing the claim is an error, never a writable mount.
func (d *Driver) claimReadOnly(ctx context.Context, req *csi.NodePublishVolumeRequest) (bool, error) {
	var modes []string
	for m := range strings.SplitSeq(req.GetVolumeContext()[ContextAccessModes], ",") {
		if m = strings.TrimSpace(m); m != "" && !slices.Contains(modes, m) {
			modes = append(modes, m)
		}
	}
	if !slices.Contains(modes, readOnlyMany) || len(modes) < 2 {
		return false, nil
	}
	volumeID, target := req.GetVolumeId(), req.GetTargetPath()
	if d.opts.ClaimAccessModes == nil {
		klog.V(2).InfoS("Volume was made for ReadOnlyMany and other modes, but the node plugin has no Kubernetes API to read its claim's; mounting it in the mode kubelet passed",
			"volumeID", volumeID, "target", target, "mode", req.GetVolumeCapability().GetAccessMode().GetMode())
		return false, nil
	}
	pvName, ok := pvNameOf(target)
	if !ok {
		return false, status.Errorf(codes.FailedPrecondition,
			"volume %s was made for %s and may be used read-only, but target path %s is not kubelet's <root>/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount, so its claim cannot be found; it is not mounted read-write without knowing",
			volumeID, req.GetVolumeContext()[ContextAccessModes], target)
	}
	claimModes, err := d.opts.ClaimAccessModes(ctx, pvName, volumeID)
	switch {
	case errors.Is(err, ErrNotTheClaim):
		return false, status.Errorf(codes.FailedPrecondition, "volume %s at %s: %v", volumeID, target, err)
	case err != nil:
		return false, status.Errorf(codes.Unavailable,
			"volume %s was made for %s; the access modes of the claim using it (PV %s) decide between read-only and read-write, and reading them failed: %v; it is not mounted read-write without knowing",
			volumeID, req.GetVolumeContext()[ContextAccessModes], pvName, err)
	case len(claimModes) == 0:
		return false, status.Errorf(codes.FailedPrecondition, "the claim of PV %s lists no access modes", pvName)
	}
	ro := !slices.ContainsFunc(claimModes, func(m string) bool { return m != readOnlyMany })
	klog.V(4).InfoS("Read the claim's access modes", "volumeID", volumeID, "pv", pvName, "claimModes", claimModes, "readOnly", ro)
	return ro, nil
}

// pvNameOf finds the PV name in a target path kubelet made for a CSI
// volume: <kubelet root>/pods/<pod UID>/volumes/kubernetes.io~csi/<pv>/mount.
func pvNameOf(target string) (string, bool) {
	parts := strings.Split(filepath.Clean(target), string(filepath.Separator))
	n := len(parts)
	if n < 6 || parts[n-1] != "mount" || parts[n-3] != "kubernetes.io~csi" || parts[n-4] != "volumes" || parts[n-6] != "pods" || parts[n-2] == "" {
		return "", false
	}
	return parts[n-2], true
}
