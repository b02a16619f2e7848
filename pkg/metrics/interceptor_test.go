package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// call runs req through the interceptor as a call of method, answered by
// resp and err.
func call(t *testing.T, method string, req, resp any, err error) {
	t.Helper()
	info := &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Node/" + method}
	got, gotErr := Interceptor(context.Background(), req, info, func(context.Context, any) (any, error) {
		return resp, err
	})
	if got != resp || !errors.Is(gotErr, err) {
		t.Fatalf("the interceptor changed the answer: %v, %v", got, gotErr)
	}
}

// histogramCount is how many observations the duration histogram holds for
// operation.
func histogramCount(t *testing.T, operation string) uint64 {
	t.Helper()
	var m dto.Metric
	if err := durations.WithLabelValues(operation).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

func TestInterceptorCountsAndTimesEveryCall(t *testing.T) {
	const method = "NodeStageVolumeForTest"
	call(t, method, &csi.NodeStageVolumeRequest{}, &csi.NodeStageVolumeResponse{}, nil)
	call(t, method, &csi.NodeStageVolumeRequest{}, nil, status.Error(codes.NotFound, "no such volume"))
	call(t, method, &csi.NodeStageVolumeRequest{}, nil, status.Error(codes.NotFound, "no such volume"))

	if got := testutil.ToFloat64(operations.WithLabelValues(method, "OK")); got != 1 {
		t.Errorf("%s OK = %v, want 1", method, got)
	}
	if got := testutil.ToFloat64(operations.WithLabelValues(method, "NotFound")); got != 2 {
		t.Errorf("%s NotFound = %v, want 2", method, got)
	}
	if got := histogramCount(t, method); got != 3 {
		t.Errorf("duration histogram of %s holds %d calls, want 3", method, got)
	}
}

func TestResult(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "OK"},
		{status.Error(codes.ResourceExhausted, "full"), "ResourceExhausted"},
		{fmt.Errorf("delete volume v of PV p: %w", status.Error(codes.Internal, "io")), "Internal"},
		{fmt.Errorf("scrub: %w", context.DeadlineExceeded), "DeadlineExceeded"},
		{context.Canceled, "Canceled"},
		{errors.New("plain"), "Unknown"},
	} {
		if got := Result(tc.err); got != tc.want {
			t.Errorf("Result(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestObserveCountsOperations(t *testing.T) {
	const op = "recycle-for-test"
	start := time.Now()
	Observe(op, start, nil)
	Observe(op, start, status.Error(codes.Internal, "scrub failed"))
	if got := testutil.ToFloat64(operations.WithLabelValues(op, "Internal")); got != 1 {
		t.Errorf("%s Internal = %v, want 1", op, got)
	}
	if got := histogramCount(t, op); got != 2 {
		t.Errorf("duration histogram of %s holds %d, want 2", op, got)
	}
}

func statsResponse(used, total int64) *csi.NodeGetVolumeStatsResponse {
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_INODES, Used: 7, Total: 1000},
		{Unit: csi.VolumeUsage_BYTES, Used: used, Total: total},
	}}
}

// present says whether a gauge vector has a series for volumeID.
func present(t *testing.T, name, volumeID string) bool {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "volume_id" && l.GetValue() == volumeID {
					return true
				}
			}
		}
	}
	return false
}

func TestUsageGaugesFollowStatsAndUnpublish(t *testing.T) {
	const id = "local#node-a#usage-test"
	stats := &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: "/mnt"}
	call(t, "NodeGetVolumeStats", stats, statsResponse(100, 1000), nil)
	call(t, "NodeGetVolumeStats", stats, statsResponse(250, 2000), nil)
	if got := testutil.ToFloat64(volumeUsed.WithLabelValues(id)); got != 250 {
		t.Errorf("used = %v, want the last answer's 250", got)
	}
	if got := testutil.ToFloat64(volumeCapacity.WithLabelValues(id)); got != 2000 {
		t.Errorf("capacity = %v, want 2000", got)
	}

	// A failed call says nothing new about the volume.
	call(t, "NodeGetVolumeStats", stats, nil, status.Error(codes.Internal, "statfs hung"))
	if got := testutil.ToFloat64(volumeUsed.WithLabelValues(id)); got != 250 {
		t.Errorf("used after a failed call = %v, want 250 kept", got)
	}
	// A failed unpublish leaves the volume published.
	unpublish := &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: "/mnt"}
	call(t, "NodeUnpublishVolume", unpublish, nil, status.Error(codes.Internal, "busy"))
	if !present(t, "stowage_volume_used_bytes", id) {
		t.Fatal("a failed unpublish dropped the usage")
	}
	call(t, "NodeUnpublishVolume", unpublish, &csi.NodeUnpublishVolumeResponse{}, nil)
	for _, name := range []string{"stowage_volume_used_bytes", "stowage_volume_capacity_bytes"} {
		if present(t, name, id) {
			t.Errorf("%s still reports %s after it was unpublished", name, id)
		}
	}

	// A volume that is gone is dropped as well.
	call(t, "NodeGetVolumeStats", stats, statsResponse(1, 2), nil)
	call(t, "NodeGetVolumeStats", stats, nil, status.Error(codes.NotFound, "gone"))
	if present(t, "stowage_volume_used_bytes", id) {
		t.Error("the usage of a volume that is NotFound is still reported")
	}
}

func TestCapacityGaugeFromGetCapacity(t *testing.T) {
	nfs := &csi.GetCapacityRequest{Parameters: map[string]string{"backend": "nfs", "server": "10.0.0.1", "share": "/export"}}
	call(t, "GetCapacity", nfs, &csi.GetCapacityResponse{AvailableCapacity: 5 << 30, MaximumVolumeSize: wrapperspb.Int64(5 << 30)}, nil)
	if got := testutil.ToFloat64(capacityAvailable.WithLabelValues("nfs", "10.0.0.1:/export")); got != 5<<30 {
		t.Errorf("nfs capacity = %v, want %v", got, 5<<30)
	}

	topo := func(node string) *csi.Topology {
		return &csi.Topology{Segments: map[string]string{backend.TopologyKey: node}}
	}
	local := &csi.GetCapacityRequest{Parameters: map[string]string{"backend": "local"}, AccessibleTopology: topo("node-a")}
	call(t, "GetCapacity", local, &csi.GetCapacityResponse{AvailableCapacity: 0, MaximumVolumeSize: wrapperspb.Int64(0)}, nil)
	if got := testutil.ToFloat64(capacityAvailable.WithLabelValues("local", "node-a")); got != 0 {
		t.Errorf("a full disk: capacity = %v, want 0", got)
	}
	// An answer for a segment the driver did not measure is not "full".
	other := &csi.GetCapacityRequest{Parameters: map[string]string{"backend": "local"}, AccessibleTopology: topo("node-b")}
	call(t, "GetCapacity", other, &csi.GetCapacityResponse{}, nil)
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == "stowage_capacity_available_bytes" && strings.Contains(m.String(), "node-b") {
				t.Errorf("an unmeasured segment is reported: %v", m)
			}
		}
	}
	// Without parameters only a node plugin answers, for its own disk.
	call(t, "GetCapacity", &csi.GetCapacityRequest{}, &csi.GetCapacityResponse{AvailableCapacity: 42, MaximumVolumeSize: wrapperspb.Int64(42)}, nil)
	if got := testutil.ToFloat64(capacityAvailable.WithLabelValues("local", "")); got != 42 {
		t.Errorf("node plugin capacity = %v, want 42", got)
	}
}
