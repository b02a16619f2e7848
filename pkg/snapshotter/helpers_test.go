package snapshotter

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/fake"
	"google.golang.org/protobuf/types/known/timestamppb"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
)

const (
	testDriver = "csi.stowage.io"
	testVolume = "nfs#10.0.0.5#/export#pv-1#pv-1#delete"
	testUID    = "0b1c2d3e-uid"
	testName   = "snapshot-" + testUID
	testSize   = int64(1 << 20)
)

var testCreated = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeCSI is a driver whose snapshots are ready after readyAfter
// CreateSnapshot calls of their name; errs are returned first, in turn.
type fakeCSI struct {
	mu         sync.Mutex
	readyAfter int
	errs       []error
	calls      map[string]int
	params     map[string]string
	deleted    []string
	known      map[string]bool // snapshot IDs ListSnapshots finds, ready
	onCreate   func()          // runs inside CreateSnapshot
}

func newFakeCSI(readyAfter int) *fakeCSI {
	return &fakeCSI{readyAfter: readyAfter, calls: map[string]int{}, known: map[string]bool{}}
}

func idOf(name string) string { return "snapshot#nfs#10.0.0.5#/export#" + name }

func (f *fakeCSI) CreateSnapshot(_ context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if f.onCreate != nil {
		f.onCreate()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.params = req.GetParameters()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	f.calls[req.GetName()]++
	return &csi.CreateSnapshotResponse{Snapshot: &csi.Snapshot{
		SnapshotId: idOf(req.GetName()), SourceVolumeId: req.GetSourceVolumeId(), SizeBytes: testSize,
		CreationTime: timestamppb.New(testCreated), ReadyToUse: f.calls[req.GetName()] >= f.readyAfter,
	}}, nil
}

func (f *fakeCSI) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	f.deleted = append(f.deleted, req.GetSnapshotId())
	return &csi.DeleteSnapshotResponse{}, nil
}

func (f *fakeCSI) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.known[req.GetSnapshotId()] {
		return &csi.ListSnapshotsResponse{}, nil
	}
	return &csi.ListSnapshotsResponse{Entries: []*csi.ListSnapshotsResponse_Entry{{Snapshot: &csi.Snapshot{
		SnapshotId: req.GetSnapshotId(), SizeBytes: testSize, CreationTime: timestamppb.New(testCreated), ReadyToUse: true,
	}}}}, nil
}

func (f *fakeCSI) createCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// world is a snapshotter on a fake API server with one class, "fast".
type world struct {
	t      *testing.T
	ctx    context.Context
	client *fake.Clientset
	s      *Snapshotter
	csi    *fakeCSI
	events *record.FakeRecorder
}

func newWorld(t *testing.T, cfg Config, objs ...runtime.Object) *world {
	t.Helper()
	class := &crdv1.VolumeSnapshotClass{ObjectMeta: metav1.ObjectMeta{Name: "fast"}, Driver: testDriver,
		DeletionPolicy: crdv1.VolumeSnapshotContentDelete,
		Parameters:     map[string]string{"copy": "reflink", reservedPrefix + "volumesnapshot/name": "ignored"}}
	objs = append(objs, class)
	//lint:ignore SA1019 the snapshot client module generates no NewClientset
	client := fake.NewSimpleClientset(objs...)
	w := &world{t: t, client: client, csi: newFakeCSI(1), events: record.NewFakeRecorder(100)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.ctx = ctx
	cfg.DriverName, cfg.Client, cfg.Recorder = testDriver, client, w.events
	if cfg.CSI == nil {
		cfg.CSI = w.csi
	}
	if cfg.Owns == nil {
		cfg.Owns = func(string) bool { return true }
	}
	cfg.RetryBase, cfg.PollBase, cfg.PollMax = time.Millisecond, time.Millisecond, 10*time.Millisecond
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.s = s
	for _, f := range s.factories {
		f.Start(ctx.Done())
	}
	for _, f := range s.factories {
		f.WaitForCacheSync(ctx.Done())
	}
	return w
}

// dynamic is a content snapshot-controller made for a VolumeSnapshot.
func dynamic(name string) *crdv1.VolumeSnapshotContent {
	vol, class := testVolume, "fast"
	return &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: []string{Finalizer}},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef:       v1.ObjectReference{Kind: "VolumeSnapshot", Namespace: "ns", Name: "snap", UID: testUID},
			DeletionPolicy:          crdv1.VolumeSnapshotContentDelete,
			Driver:                  testDriver,
			VolumeSnapshotClassName: &class,
			Source:                  crdv1.VolumeSnapshotContentSource{VolumeHandle: &vol},
		},
	}
}

// preProvisioned is a content an admin made for an existing snapshot.
func preProvisioned(name, id string) *crdv1.VolumeSnapshotContent {
	return &crdv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: crdv1.VolumeSnapshotContentSpec{
			VolumeSnapshotRef: v1.ObjectReference{Kind: "VolumeSnapshot", Namespace: "ns", Name: "snap", UID: testUID},
			DeletionPolicy:    crdv1.VolumeSnapshotContentRetain,
			Driver:            testDriver,
			Source:            crdv1.VolumeSnapshotContentSource{SnapshotHandle: &id},
		},
	}
}

// deleting marks c as deleted by its user and, if approved, as let go by
// snapshot-controller.
func deleting(c *crdv1.VolumeSnapshotContent, approved bool) *crdv1.VolumeSnapshotContent {
	now := metav1.Now()
	c.DeletionTimestamp = &now
	if approved {
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, AnnBeingDeleted, "yes")
	}
	return c
}

// get reads the content from the fake API server.
func (w *world) get(name string) *crdv1.VolumeSnapshotContent {
	w.t.Helper()
	c, err := w.client.SnapshotV1().VolumeSnapshotContents().Get(w.ctx, name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// step runs one sync once the informer has seen the content as the API
// server has it, as the queue would.
func (w *world) step(name string) (bool, error) {
	w.t.Helper()
	want := w.get(name)
	err := wait.PollUntilContextTimeout(w.ctx, time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got, err := w.s.contents.Get(name)
		return err == nil && equality.Semantic.DeepEqual(got, want), nil
	})
	if err != nil {
		w.t.Fatalf("the informer never saw content %s as the API server has it", name)
	}
	return w.s.sync(w.ctx, name)
}

// drained is every event recorded so far, "Type Reason message" each.
func (w *world) drained() []string {
	var out []string
	for {
		select {
		case e := <-w.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// hasEvent says whether one of events has the reason and contains text.
func hasEvent(events []string, reason, text string) bool {
	for _, e := range events {
		if strings.Contains(e, " "+reason+" ") && strings.Contains(e, text) {
			return true
		}
	}
	return false
}

// The informers generated in the snapshot client module do not tell the
// reflector that the fake clientset cannot stream a watch-list, so with
// client-go's default WatchListClient they never sync against it. The real
// API server streams them; only the tests need the old list-then-watch.
func TestMain(m *testing.M) {
	if err := os.Setenv("KUBE_FEATURE_WatchListClient", "false"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
