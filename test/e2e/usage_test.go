package e2e

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestUsageInKubeletMetrics: kubelet's own metrics show, for a claim of each
// backend, the volume's size as its capacity (not the disk's or the share's)
// and what the pod wrote as used bytes. Kubelet gets these from
// NodeGetVolumeStats; the cluster measures every 10 s (node-up.sh).
func TestUsageInKubeletMetrics(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "usage")
	const written = 4 << 20
	claims := map[string]string{"local": "stowage-local", "nfs": "stowage-nfs"}
	for name, class := range claims {
		e.createClaim(t, ns, name, class, corev1.ReadWriteOnce)
		e.createPod(t, ns, "writer-"+name,
			fmt.Sprintf("dd if=/dev/urandom of=/data/blob bs=1M count=%d && sync && sleep 3600", written>>20),
			podVolume{claim: name, path: "/data"})
	}
	for name := range claims {
		e.waitPodReady(t, ns, "writer-"+name)
	}
	const size = 32 << 20 // createClaim's
	for name := range claims {
		waiter(t, 3*time.Minute).Eventually("kubelet's volume stats of claim "+name, func(ctx context.Context) (bool, error) {
			m, err := e.kubeletVolumeStats(ctx, ns, name)
			if err != nil || len(m) == 0 {
				return false, err
			}
			t.Logf("claim %s: %v", name, m)
			return m["kubelet_volume_stats_capacity_bytes"] == size &&
				m["kubelet_volume_stats_used_bytes"] >= written &&
				m["kubelet_volume_stats_used_bytes"] < size &&
				m["kubelet_volume_stats_available_bytes"] <= size-written &&
				m["kubelet_volume_stats_inodes_used"] >= 2, nil
		})
	}
}

// kubeletVolumeStats reads the kubelet_volume_stats_* samples of one claim
// from the node's kubelet, through the API server's node proxy.
func (e *env) kubeletVolumeStats(ctx context.Context, ns, claim string) (map[string]float64, error) {
	raw, err := e.client.CoreV1().RESTClient().Get().
		AbsPath("/api/v1/nodes", e.nodeName, "proxy", "metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	want := fmt.Sprintf(`namespace=%q,persistentvolumeclaim=%q`, ns, claim)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "kubelet_volume_stats_") || !strings.Contains(line, want) {
			continue
		}
		name := line[:strings.IndexByte(line, '{')]
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("kubelet metric %q: %w", line, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}
