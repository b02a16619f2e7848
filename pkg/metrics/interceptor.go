package metrics

import (
	"context"
	"path"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/params"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Interceptor is a gRPC unary interceptor that counts and times every CSI
// call and keeps the usage and capacity gauges from the answers.
func Interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	Observe(path.Base(info.FullMethod), start, err) // "/csi.v1.Node/NodePublishVolume" → "NodePublishVolume"
	Record(req, resp, err)
	return resp, err
}

// Record updates the gauges that a CSI call's answer tells about. The
// interceptor calls it for calls that come through the socket; code that
// calls the driver in-process can call it too.
func Record(req, resp any, err error) {
	switch r := req.(type) {
	case *csi.NodeGetVolumeStatsRequest:
		recordStats(r.GetVolumeId(), resp, err)
	case *csi.NodeUnpublishVolumeRequest:
		if err == nil {
			forgetVolume(r.GetVolumeId())
		}
	case *csi.GetCapacityRequest:
		if c, ok := resp.(*csi.GetCapacityResponse); ok && err == nil {
			recordCapacity(r, c)
		}
	}
}

func recordStats(volumeID string, resp any, err error) {
	if status.Code(err) == codes.NotFound {
		forgetVolume(volumeID) // gone: a stale usage would be reported forever
		return
	}
	stats, ok := resp.(*csi.NodeGetVolumeStatsResponse)
	if err != nil || !ok {
		return
	}
	for _, u := range stats.GetUsage() {
		if u.GetUnit() == csi.VolumeUsage_BYTES {
			volumeUsed.WithLabelValues(volumeID).Set(float64(u.GetUsed()))
			volumeCapacity.WithLabelValues(volumeID).Set(float64(u.GetTotal()))
		}
	}
}

// forgetVolume drops a volume's usage once it is no longer published here.
// A volume published into two pods on one node loses it at the first
// unpublish until kubelet asks for its stats again.
func forgetVolume(volumeID string) {
	volumeUsed.DeleteLabelValues(volumeID)
	volumeCapacity.DeleteLabelValues(volumeID)
}

func recordCapacity(req *csi.GetCapacityRequest, resp *csi.GetCapacityResponse) {
	// The driver leaves MaximumVolumeSize unset when it did not measure:
	// another node's segment, capabilities the backend cannot serve. That
	// zero means "nothing here", not "full", and must not read as full.
	if resp.GetMaximumVolumeSize() == nil {
		return
	}
	kind := req.GetParameters()[params.Backend]
	if kind == "" {
		// A call without class parameters succeeds only on a node plugin,
		// which then answers for its local disk.
		kind = volumeid.Local
	}
	capacityAvailable.WithLabelValues(kind, segmentOf(req)).Set(float64(resp.GetAvailableCapacity()))
}

// segmentOf names the storage a GetCapacity call measured: the node of a
// topology segment (local disk), else the NFS share of the class
// parameters as server:share, else "" (a node plugin's own disk).
func segmentOf(req *csi.GetCapacityRequest) string {
	if n, ok := req.GetAccessibleTopology().GetSegments()[backend.TopologyKey]; ok {
		return n
	}
	in := req.GetParameters()
	if in[params.Server] != "" {
		return in[params.Server] + ":" + in[params.Share]
	}
	return ""
}
