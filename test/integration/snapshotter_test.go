package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"google.golang.org/protobuf/types/known/timestamppb"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/stowage-csi/stowage/pkg/snapshotter"
)

// TestSnapshotter plays snapshot-controller's part by hand (none runs here)
// and checks that the snapshotter, against the real API server and the real
// snapshot CRDs of the chart, turns a bound dynamic content into a ready snapshot and lets
// it go when deleted; and that the controller and a node split contents as
// the managed-by label says.
func TestSnapshotter(t *testing.T) {
	h := newHarness(t)
	snaps := installSnapshotCRDs(h) // the chart's, as users get them

	class := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: h.id}, Driver: h.driver,
		DeletionPolicy: crdv1.VolumeSnapshotContentDelete,
		Parameters:     map[string]string{"copy": "fast", "csi.storage.k8s.io/volumesnapshot/name": "not for the driver"}}
	if _, err := snaps.SnapshotV1().VolumeSnapshotClasses().Create(h.ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = snaps.SnapshotV1().VolumeSnapshotClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
	})

	node := h.nodeName("n1")
	nfsContent := h.boundContent(snaps, "nfs-snap", "nfs#10.0.0.5#/export#pv-a#pv-a#delete", "")
	localContent := h.boundContent(snaps, "local-snap", "local#"+node+"#pv-b#pv-b#delete", node)

	// The events go through a real recorder: that the API server accepts
	// them shows the snapshot kinds are known to client-go's scheme.
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: h.c.CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Each instance has its own driver, to show which one cut what.
	drivers := map[string]*readyLater{nfsContent: newReadyLater(3), localContent: newReadyLater(3)}
	start := func(driver *readyLater, nodeName string, owns func(string) bool) {
		s, err := snapshotter.New(snapshotter.Config{
			DriverName: h.driver, CSI: driver, Client: snaps, Owns: owns, NodeName: nodeName,
			Recorder: broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "stowage-it"}),
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Run(ctx)
	}
	start(drivers[nfsContent], "", func(handle string) bool { return !strings.HasPrefix(handle, "local#") })
	// The node's Owns takes every handle: its informer's label filter alone
	// keeps it to its own contents.
	start(drivers[localContent], node, func(string) bool { return true })

	ready := map[string]*crdv1.VolumeSnapshotContent{}
	for _, name := range []string{nfsContent, localContent} {
		h.Eventually("content "+name+" ready", func(ctx context.Context) (bool, error) {
			c, err := snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			ready[name] = c
			return c.Status != nil && c.Status.ReadyToUse != nil && *c.Status.ReadyToUse, fmt.Errorf("status %+v", c.Status)
		})
		c := ready[name]
		if !slices.Contains(c.Finalizers, snapshotter.Finalizer) {
			t.Errorf("%s: finalizers %v lack %s", name, c.Finalizers, snapshotter.Finalizer)
		}
		if _, ok := c.Annotations[snapshotter.AnnBeingCreated]; ok {
			t.Errorf("%s: the being-created annotation is left", name)
		}
		if c.Status.SnapshotHandle == nil || c.Status.RestoreSize == nil || *c.Status.RestoreSize != 1<<20 || c.Status.CreationTime == nil {
			t.Errorf("%s: status %+v; want a handle, a restore size of 1 MiB and a creation time", name, c.Status)
		}
		h.In("").WaitEvent("VolumeSnapshotContent", name, "SnapshotReady")
	}
	for name, d := range drivers {
		if got := d.params(); got["copy"] != "fast" || len(got) != 1 {
			t.Errorf("%s: CreateSnapshot parameters %v, want only copy=fast", name, got)
		}
		if n := d.created(); n != 1 {
			t.Errorf("the instance meant for %s cut %d snapshots, want 1 (its own)", name, n)
		}
	}

	// Deleting: the user deletes the VolumeSnapshot; snapshot-controller
	// marks the content and deletes it; the finalizer holds it until the
	// snapshotter has deleted the snapshot.
	for _, name := range []string{nfsContent, localContent} {
		patch := []byte(`{"metadata":{"annotations":{"` + snapshotter.AnnBeingDeleted + `":"yes"}}}`)
		if _, err := snaps.SnapshotV1().VolumeSnapshotContents().Patch(h.ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := snaps.SnapshotV1().VolumeSnapshotContents().Delete(h.ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{nfsContent, localContent} {
		h.WaitGone("content "+name, func(ctx context.Context) error {
			_, err := snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, name, metav1.GetOptions{})
			return err
		})
		if id := *ready[name].Status.SnapshotHandle; !drivers[name].wasDeleted(id) {
			t.Errorf("content %s is gone but its snapshot %s was never deleted", name, id)
		}
	}
}

// boundContent makes a VolumeSnapshot of a claim and the content
// snapshot-controller would make for it, bound both ways, labelled with node
// if the volume is local; it returns the content's name.
func (h *harness) boundContent(snaps snapclient.Interface, name, volumeHandle, node string) string {
	h.t.Helper()
	className, claim := h.id, "data-"+name
	vs, err := snaps.SnapshotV1().VolumeSnapshots(h.ns).Create(h.ctx, &crdv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: crdv1.VolumeSnapshotSpec{Source: crdv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim},
			VolumeSnapshotClassName: &className},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	content := &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: "snapcontent-" + string(vs.UID), Finalizers: []string{snapshotter.Finalizer}},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{Kind: "VolumeSnapshot", APIVersion: "snapshot.storage.k8s.io/v1",
				Namespace: h.ns, Name: name, UID: vs.UID, ResourceVersion: vs.ResourceVersion},
			DeletionPolicy:          crdv1.VolumeSnapshotContentDelete,
			Driver:                  h.driver,
			VolumeSnapshotClassName: &className,
			Source:                  crdv1.VolumeSnapshotContentSource{VolumeHandle: &volumeHandle},
		},
	}
	if node != "" {
		content.Labels = map[string]string{snapshotter.ManagedByLabel: node}
	}
	if _, err := snaps.SnapshotV1().VolumeSnapshotContents().Create(h.ctx, content, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		ctx := context.Background()
		if c, err := snaps.SnapshotV1().VolumeSnapshotContents().Get(ctx, content.Name, metav1.GetOptions{}); err == nil && len(c.Finalizers) > 0 {
			c.Finalizers = nil
			_, _ = snaps.SnapshotV1().VolumeSnapshotContents().Update(ctx, c, metav1.UpdateOptions{})
		}
		_ = snaps.SnapshotV1().VolumeSnapshotContents().Delete(ctx, content.Name, metav1.DeleteOptions{})
	})
	return content.Name
}

// readyLater is a driver whose snapshots are ready at the after-th
// CreateSnapshot of their name, as Stowage's asynchronous copies are.
type readyLater struct {
	mu      sync.Mutex
	after   int
	calls   map[string]int
	last    map[string]string
	deleted []string
}

func newReadyLater(after int) *readyLater {
	return &readyLater{after: after, calls: map[string]int{}}
}

func (d *readyLater) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[req.GetName()]++
	d.last = req.GetParameters()
	return &csi.CreateSnapshotResponse{Snapshot: &csi.Snapshot{
		SnapshotId: "snapshot#it#" + req.GetName(), SourceVolumeId: req.GetSourceVolumeId(), SizeBytes: 1 << 20,
		CreationTime: timestamppb.Now(), ReadyToUse: d.calls[req.GetName()] >= d.after,
	}}, nil
}

func (d *readyLater) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleted = append(d.deleted, req.GetSnapshotId())
	return &csi.DeleteSnapshotResponse{}, nil
}

func (d *readyLater) ListSnapshots(context.Context, *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	return &csi.ListSnapshotsResponse{}, nil
}

func (d *readyLater) params() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

// created is how many snapshots were asked for (polls of one count once).
func (d *readyLater) created() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

func (d *readyLater) wasDeleted(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.deleted, id)
}
