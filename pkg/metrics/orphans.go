package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

var (
	orphaned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "orphaned_volumes",
		Help: "Volumes whose record is on a storage root but which no PersistentVolume uses, as the last orphan " +
			"pass found them (root: server:/share for NFS, local:<node> for a node's base path).",
	}, []string{"root"})
	orphanedMu sync.Mutex
)

func init() { prometheus.MustRegister(orphaned) }

// RootLabel names a storage root in the root label of stowage_orphaned_volumes.
func RootLabel(root volumeid.ID) string {
	if root.Backend == volumeid.Local {
		return "local:" + root.Node
	}
	return root.Server + ":" + root.Share
}

// ReportOrphans replaces what stowage_orphaned_volumes says with counts (by
// RootLabel): roots no longer looked at disappear, and nil clears it all
// (an instance that stops reconciling, such as a replica that lost its
// lease, reports nothing rather than old numbers).
func ReportOrphans(counts map[string]int) {
	orphanedMu.Lock()
	defer orphanedMu.Unlock()
	orphaned.Reset()
	for root, n := range counts {
		orphaned.WithLabelValues(root).Set(float64(n))
	}
}

// Orphans is what stowage_orphaned_volumes says for root, and whether it
// has that series at all (tests of the packages that report read it).
func Orphans(root string) (float64, bool) {
	orphanedMu.Lock()
	defer orphanedMu.Unlock()
	ch := make(chan prometheus.Metric, 64)
	go func() { orphaned.Collect(ch); close(ch) }()
	value, found := 0.0, false
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "root" && l.GetValue() == root {
				value, found = d.GetGauge().GetValue(), true
			}
		}
	}
	return value, found
}
