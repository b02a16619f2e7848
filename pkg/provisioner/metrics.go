package provisioner

import (
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v10/controller/metrics"
)

// libMetrics are the library's provisioning and deletion counters and
// histograms, registered once per process in the default registry (the
// library would otherwise open its own HTTP port for them).
var libMetrics = sync.OnceValue(func() metrics.Metrics {
	m := metrics.New("controller")
	for _, c := range []prometheus.Collector{
		m.PersistentVolumeClaimProvisionTotal,
		m.PersistentVolumeClaimProvisionFailedTotal,
		m.PersistentVolumeClaimProvisionDurationSeconds,
		m.PersistentVolumeDeleteTotal,
		m.PersistentVolumeDeleteFailedTotal,
		m.PersistentVolumeDeleteDurationSeconds,
	} {
		var already prometheus.AlreadyRegisteredError
		if err := prometheus.Register(c); err != nil && !errors.As(err, &already) {
			panic(err) // a programming error: two different metrics with one name
		}
	}
	return m
})

// metricsHandler serves the default registry, which holds libMetrics and
// whatever else the binary registers there.
func metricsHandler() http.Handler {
	libMetrics()
	return promhttp.Handler()
}
