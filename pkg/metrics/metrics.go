// Package metrics owns Stowage's own Prometheus metrics: how every CSI call
// and every provision, delete, recycle and resize ended and how long it
// took, how many volumes are in each phase, each published volume's usage
// and each storage's free capacity. They are registered once, in the
// default registry, which the process serves on /metrics of its health
// address (docs/observability.md lists them all).
package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Operations that are not CSI calls, for Observe. CSI calls are named by
// their method (CreateVolume, NodeGetVolumeStats, ...).
const (
	Provision = "provision" // a claim turned into a PV, CreateVolume included
	Delete    = "delete"    // a released PV's volume removed, DeleteVolume included
	Recycle   = "recycle"   // a released PV scrubbed and made Available
	Resize    = "resize"    // a claim's volume grown
)

const namespace = "stowage"

var (
	operations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "operations_total",
		Help: "CSI calls and provision/delete/recycle/resize operations, by operation and result " +
			"(the gRPC code name: OK, NotFound, ResourceExhausted, ...).",
	}, []string{"operation", "result"})

	durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "operation_duration_seconds",
		Help:      "How long CSI calls and provision/delete/recycle/resize operations took, whatever their result.",
		// From a cached stats answer (well under a millisecond) to the
		// scrub of a large volume (minutes).
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
	}, []string{"operation"})

	volumeUsed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "volume_used_bytes",
		Help:      "Bytes used in a volume published on this node, as its last NodeGetVolumeStats answered.",
	}, []string{"volume_id"})

	volumeCapacity = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "volume_capacity_bytes",
		Help: "Size of a volume published on this node (its enforced limit, else its recorded size, " +
			"else its filesystem's), as its last NodeGetVolumeStats answered.",
	}, []string{"volume_id"})

	capacityAvailable = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "capacity_available_bytes",
		Help: "Bytes new volumes can still be given on a storage (free space minus what its volumes were " +
			"promised), as its last GetCapacity answered.",
	}, []string{"backend", "segment"})
)

func init() {
	prometheus.MustRegister(operations, durations, volumeUsed, volumeCapacity, capacityAvailable, volumes)
}

// Observe counts one operation that started at start and ended with err,
// and records how long it took. Call it where the operation returns:
//
//	start := time.Now()
//	err := doIt()
//	metrics.Observe(metrics.Recycle, start, err)
func Observe(operation string, start time.Time, err error) {
	operations.WithLabelValues(operation, Result(err)).Inc()
	durations.WithLabelValues(operation).Observe(time.Since(start).Seconds())
}

// Result names how an operation ended: the gRPC code name of err (found
// through wrapping), DeadlineExceeded or Canceled for a context's errors,
// and Unknown for any other error.
func Result(err error) string {
	if err == nil {
		return codes.OK.String()
	}
	if st, ok := status.FromError(err); ok {
		return st.Code().String()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded.String()
	case errors.Is(err, context.Canceled):
		return codes.Canceled.String()
	}
	return codes.Unknown.String()
}

// Count is how many operations of a kind ended with result in this process,
// as stowage_operations_total says (tests of the packages that count read it).
func Count(operation, result string) float64 {
	var m dto.Metric
	if err := operations.WithLabelValues(operation, result).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
