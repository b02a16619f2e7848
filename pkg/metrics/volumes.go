package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// volumes counts the driver's PVs at every scrape from an informer's cache,
// so the numbers are never out of step with what the provisioner sees and
// cost nothing between scrapes.
var volumes = &volumeCollector{
	desc: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "volumes"),
		"PersistentVolumes of this driver, by backend (nfs, local) and phase (Pending, Available, Bound, Released, Failed).",
		[]string{"backend", "phase"}, nil),
}

// phases are reported even when no volume is in them, so that a graph or
// an alert sees 0 rather than no data.
var phases = []v1.PersistentVolumePhase{v1.VolumePending, v1.VolumeAvailable, v1.VolumeBound, v1.VolumeReleased, v1.VolumeFailed}

type volumeCollector struct {
	desc *prometheus.Desc

	mu     sync.Mutex
	pvs    corelisters.PersistentVolumeLister // nil: not counting (standby replica, not started)
	driver string
}

// CountVolumes makes stowage_volumes count the PVs of driver in pvs, a
// synced lister, until the returned stop is called. Only one instance in
// a cluster should count (the elected controller), or the numbers are
// reported twice.
func CountVolumes(pvs corelisters.PersistentVolumeLister, driver string) (stop func()) {
	volumes.mu.Lock()
	defer volumes.mu.Unlock()
	volumes.pvs, volumes.driver = pvs, driver
	return func() {
		volumes.mu.Lock()
		defer volumes.mu.Unlock()
		if volumes.pvs == pvs {
			volumes.pvs = nil
		}
	}
}

func (c *volumeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *volumeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	pvs, driver := c.pvs, c.driver
	c.mu.Unlock()
	if pvs == nil {
		return
	}
	all, err := pvs.List(labels.Everything())
	if err != nil {
		klog.ErrorS(err, "Could not count volumes for stowage_volumes")
		return
	}
	type key struct{ backend, phase string }
	counts := map[key]int{}
	for _, kind := range []string{volumeid.NFS, volumeid.Local} {
		for _, p := range phases {
			counts[key{kind, string(p)}] = 0
		}
	}
	for _, pv := range all {
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driver {
			continue
		}
		phase := pv.Status.Phase
		if phase == "" {
			phase = v1.VolumePending // just created; the PV controller has not set one yet
		}
		counts[key{backendOf(pv.Spec.CSI.VolumeHandle), string(phase)}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k.backend, k.phase)
	}
}

// backendOf is the backend a volume handle names, or "unknown" for a
// handle Stowage cannot read (a hand-written static PV).
func backendOf(handle string) string {
	id, err := volumeid.Parse(handle)
	if err != nil {
		return "unknown"
	}
	return id.Backend
}
