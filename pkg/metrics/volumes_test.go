package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func pv(name, driver, handle string, phase v1.PersistentVolumePhase) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{PersistentVolumeSource: v1.PersistentVolumeSource{
			CSI: &v1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: handle},
		}},
		Status: v1.PersistentVolumeStatus{Phase: phase},
	}
}

func listerOf(t *testing.T, pvs ...*v1.PersistentVolume) corelisters.PersistentVolumeLister {
	t.Helper()
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, p := range pvs {
		if err := indexer.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return corelisters.NewPersistentVolumeLister(indexer)
}

func TestVolumesCountsByBackendAndPhase(t *testing.T) {
	const driver = "csi.stowage.io"
	lister := listerOf(t,
		pv("a", driver, "nfs#10.0.0.1#/export#a", v1.VolumeBound),
		pv("b", driver, "nfs#10.0.0.1#/export#b", v1.VolumeBound),
		pv("c", driver, "nfs#10.0.0.1#/export#c", v1.VolumeReleased),
		pv("d", driver, "local#node-a#d", v1.VolumeAvailable),
		pv("e", driver, "local#node-a#e", ""), // just created
		pv("f", driver, "not a stowage handle", v1.VolumeFailed),
		pv("g", "other.csi.driver", "nfs#10.0.0.1#/export#g", v1.VolumeBound),
		&v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "hostpath"}, Status: v1.PersistentVolumeStatus{Phase: v1.VolumeBound}},
	)

	if n := testutil.CollectAndCount(volumes); n != 0 {
		t.Fatalf("before CountVolumes the collector reports %d series, want none", n)
	}
	stop := CountVolumes(lister, driver)
	want := `
# HELP stowage_volumes PersistentVolumes of this driver, by backend (nfs, local) and phase (Pending, Available, Bound, Released, Failed).
# TYPE stowage_volumes gauge
stowage_volumes{backend="local",phase="Available"} 1
stowage_volumes{backend="local",phase="Bound"} 0
stowage_volumes{backend="local",phase="Failed"} 0
stowage_volumes{backend="local",phase="Pending"} 1
stowage_volumes{backend="local",phase="Released"} 0
stowage_volumes{backend="nfs",phase="Available"} 0
stowage_volumes{backend="nfs",phase="Bound"} 2
stowage_volumes{backend="nfs",phase="Failed"} 0
stowage_volumes{backend="nfs",phase="Pending"} 0
stowage_volumes{backend="nfs",phase="Released"} 1
stowage_volumes{backend="unknown",phase="Failed"} 1
`
	if err := testutil.CollectAndCompare(volumes, strings.NewReader(want), "stowage_volumes"); err != nil {
		t.Error(err)
	}

	// Another instance took over: stopping the old one must not stop it.
	stopNewer := CountVolumes(listerOf(t), driver)
	stop()
	if n := testutil.CollectAndCount(volumes); n != 10 {
		t.Errorf("after the older counter stopped: %d series, want the newer's 10 zeros", n)
	}
	stopNewer()
	if n := testutil.CollectAndCount(volumes); n != 0 {
		t.Errorf("after stop the collector reports %d series, want none", n)
	}
}
