package driver

import (
	"fmt"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// k8sName gives the Kubernetes name of a CSI access mode, for messages users read.
var k8sName = map[csi.VolumeCapability_AccessMode_Mode]string{
	csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER:        "ReadWriteOnce",
	csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:   "ReadWriteOnce (read-only)",
	csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER: "ReadWriteOncePod",
	csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:  "ReadWriteOnce",
	csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:    "ReadOnlyMany",
	csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER:  "ReadWriteMany (single writer)",
	csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:   "ReadWriteMany",
}

// checkCapabilities checks each capability against what the backend can honour.
func checkCapabilities(b backend.Backend, caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities are missing")
	}
	for _, c := range caps {
		if err := checkCapability(b, c); err != nil {
			return err
		}
	}
	return nil
}

// checkCapability returns an InvalidArgument status for a capability the
// backend cannot honour, saying what to use instead.
func checkCapability(b backend.Backend, c *csi.VolumeCapability) error {
	if c == nil {
		return status.Error(codes.InvalidArgument, "volume capability is missing")
	}
	if c.GetBlock() != nil {
		return status.Error(codes.InvalidArgument, "block volumes are not supported: Stowage volumes are directories; use volumeMode: Filesystem")
	}
	if c.GetMount() == nil {
		return status.Error(codes.InvalidArgument, "volume capability has no access type; set mount")
	}
	mode := c.GetAccessMode().GetMode()
	if _, known := k8sName[mode]; !known {
		return status.Errorf(codes.InvalidArgument, "access mode %v is not supported", mode)
	}
	if !slices.Contains(b.AccessModes(), mode) {
		hint := ""
		if !slices.Contains(b.AccessModes(), csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER) {
			hint = ": its volumes live on one node; use an NFS StorageClass for ReadWriteMany or ReadOnlyMany"
		}
		return status.Errorf(codes.InvalidArgument,
			"access mode %s (%v) is not supported by the %s backend%s", k8sName[mode], mode, b.Kind(), hint)
	}
	return nil
}

// readOnlyMode reports whether a mode allows reading only, in which case the
// volume is mounted read-only whatever the pod asks for.
func readOnlyMode(c *csi.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

// capacity picks the size of a new volume from the request's range.
func capacity(r *csi.CapacityRange) (int64, error) {
	req, lim := r.GetRequiredBytes(), r.GetLimitBytes()
	switch {
	case req < 0 || lim < 0:
		return 0, fmt.Errorf("capacity range must not be negative (required %d, limit %d)", req, lim)
	case lim > 0 && req > lim:
		return 0, fmt.Errorf("required capacity %d is larger than the limit %d", req, lim)
	case req > 0:
		return req, nil
	case lim > 0 && lim < DefaultCapacity:
		return lim, nil
	}
	return DefaultCapacity, nil
}
