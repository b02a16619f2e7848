package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	v1 "k8s.io/api/core/v1"
)

// TestMetrics scrapes the real binaries' /metrics while a local volume goes
// through its life: provisioned by the node plugin, published, measured,
// unpublished and deleted; counted by phase in the controller.
func TestMetrics(t *testing.T) {
	h := newHarness(t)
	ctrl := h.controller("controller", false)
	nodeName := h.nodeName("a")
	node := h.node(nodeName)

	sc := h.localClass("local", nil)
	h.claim("data", sc, nodeName, "64Mi", []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce})
	pv := h.WaitBound("data")
	handle := pv.Spec.CSI.VolumeHandle

	waitMetric(t, ctrl, `stowage_volumes{backend="local",phase="Bound"}`, 1)
	waitMetric(t, ctrl, `stowage_volumes{backend="nfs",phase="Bound"}`, 0)
	waitMetric(t, node, `stowage_operations_total{operation="provision",result="OK"}`, 1)
	waitMetric(t, node, `stowage_operation_duration_seconds_count{operation="provision"}`, 1)

	// The CSI calls kubelet would make, through the node plugin's socket.
	csiNode := csi.NewNodeClient(dial(t, node))
	target := filepath.Join(h.logDir, "target")
	_, err := csiNode.NodePublishVolume(h.ctx, &csi.NodePublishVolumeRequest{
		VolumeId: handle, TargetPath: target, VolumeContext: pv.Spec.CSI.VolumeAttributes,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
	})
	if err != nil {
		t.Fatalf("NodePublishVolume: %v", err)
	}
	const written = 3 << 20
	if err := os.WriteFile(filepath.Join(target, "data"), make([]byte, written), 0o644); err != nil {
		t.Fatal(err)
	}
	stats, err := csiNode.NodeGetVolumeStats(h.ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: handle, VolumePath: target})
	if err != nil {
		t.Fatalf("NodeGetVolumeStats: %v", err)
	}
	var used, total int64
	for _, u := range stats.GetUsage() {
		if u.GetUnit() == csi.VolumeUsage_BYTES {
			used, total = u.GetUsed(), u.GetTotal()
		}
	}
	if used < written {
		t.Fatalf("NodeGetVolumeStats says %d bytes used after writing %d", used, written)
	}
	// The gauges say what the call answered.
	volume := fmt.Sprintf(`{volume_id=%q}`, handle)
	waitMetric(t, node, "stowage_volume_used_bytes"+volume, float64(used))
	waitMetric(t, node, "stowage_volume_capacity_bytes"+volume, float64(total))
	waitMetric(t, node, `stowage_operations_total{operation="NodeGetVolumeStats",result="OK"}`, 1)

	capacity, err := csi.NewControllerClient(dial(t, node)).GetCapacity(h.ctx, &csi.GetCapacityRequest{
		Parameters: map[string]string{"backend": "local"},
	})
	if err != nil {
		t.Fatalf("GetCapacity: %v", err)
	}
	waitMetric(t, node, `stowage_capacity_available_bytes{backend="local",segment=""}`, float64(capacity.GetAvailableCapacity()))

	if _, err := csiNode.NodeUnpublishVolume(h.ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: handle, TargetPath: target}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v", err)
	}
	text, err := node.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, volume) {
		t.Errorf("the usage of %s is still reported after NodeUnpublishVolume:\n%s", handle, grepLines(text, handle))
	}

	h.DeleteClaim("data")
	h.WaitPVGone(pv.Name)
	// At least one: the provisioner library may call Delete again for a
	// volume already gone (its retry after removing the finalizer).
	waitMetricAtLeast(t, node, `stowage_operations_total{operation="delete",result="OK"}`, 1)
	waitMetric(t, ctrl, `stowage_volumes{backend="local",phase="Bound"}`, 0)
}

// dial connects to the CSI socket of p.
func dial(t *testing.T, p *proc) *grpc.ClientConn {
	t.Helper()
	var endpoint string
	for _, a := range p.args {
		if v, ok := strings.CutPrefix(a, "--endpoint="); ok {
			endpoint = v
		}
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// waitMetric waits until p's /metrics has the series (name{labels}, as
// printed) with value want.
func waitMetric(t *testing.T, p *proc, series string, want float64) {
	t.Helper()
	waitSeries(t, p, series, fmt.Sprint(want), func(got float64) bool { return got == want })
}

func waitMetricAtLeast(t *testing.T, p *proc, series string, least float64) {
	t.Helper()
	waitSeries(t, p, series, fmt.Sprint(">= ", least), func(got float64) bool { return got >= least })
}

func waitSeries(t *testing.T, p *proc, series, want string, ok func(float64) bool) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	waiter(t, wait).Eventually(fmt.Sprintf("%s %s on %s", series, want, p.name), func(context.Context) (bool, error) {
		text, err := p.metrics()
		if err != nil {
			return false, err
		}
		m := line.FindStringSubmatch(text)
		if m == nil {
			name, _, _ := strings.Cut(series, "{")
			return false, fmt.Errorf("no such series; %s has:\n%s", name, grepLines(text, name))
		}
		got, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return false, err
		}
		if !ok(got) {
			return false, fmt.Errorf("%s", m[0])
		}
		return true, nil
	})
}

func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
