package main

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/stowage-csi/stowage/pkg/metrics"
	"github.com/stowage-csi/stowage/pkg/provisioner"
)

// metricsCompanions are the provisioner companions that keep metrics. The
// controller counts every volume of the driver, whatever its backend: it
// watches all PVs anyway, and one counter per cluster (the elected one)
// keeps stowage_volumes from being reported once per node.
func metricsCompanions(cfg config) []provisioner.Companion {
	if cfg.mode != modeController {
		return nil
	}
	return []provisioner.Companion{countVolumes(cfg.driverName)}
}

// countVolumes serves stowage_volumes from the provisioner's PV informer
// once its cache has synced, so that a scrape never sees a half-filled count.
func countVolumes(driverName string) provisioner.Companion {
	return func(_ context.Context, factory informers.SharedInformerFactory, _ record.EventRecorder) (func(context.Context), error) {
		pvs := factory.Core().V1().PersistentVolumes()
		informer := pvs.Informer()
		return func(ctx context.Context) {
			if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
				return
			}
			stop := metrics.CountVolumes(pvs.Lister(), driverName)
			defer stop()
			<-ctx.Done()
		}, nil
	}
}

// serveMetricsAlone puts /metrics on mux when no provisioner does (it
// serves them itself, with its library's metrics), so that the CSI calls'
// metrics are scraped either way.
func serveMetricsAlone(cfg config, mux *http.ServeMux) {
	if cfg.provisioner {
		return
	}
	mux.Handle("/metrics", promhttp.Handler())
}
