package snapshotter

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	crdv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// The whole loop: queue, informer and polls, until the driver's copy is done.
func TestRunPollsUntilReady(t *testing.T) {
	w := newWorld(t, Config{}, dynamic("c1"))
	w.csi.readyAfter = 3
	go w.s.Run(w.ctx)
	err := wait.PollUntilContextTimeout(w.ctx, 5*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return isReady(w.get("c1")), nil
	})
	if err != nil {
		t.Fatalf("content never became ready; status %+v", w.get("c1").Status)
	}
	c := w.get("c1")
	st := c.Status
	if *st.SnapshotHandle != idOf(testName) || *st.RestoreSize != testSize || *st.CreationTime != testCreated.UnixNano() || st.Error != nil {
		t.Errorf("status = handle %s size %d created %d error %v; want %s %d %d nil",
			*st.SnapshotHandle, *st.RestoreSize, *st.CreationTime, st.Error, idOf(testName), testSize, testCreated.UnixNano())
	}
	if !slices.Contains(c.Finalizers, Finalizer) {
		t.Errorf("finalizers %v lack %s", c.Finalizers, Finalizer)
	}
	if _, ok := c.Annotations[AnnBeingCreated]; ok {
		t.Error("the being-created annotation is still there after the driver answered")
	}
	// More calls than three may come: an update seen while the informer
	// still holds the not-ready status asks once more (harmless, the call
	// is idempotent). That a ready content is not asked about is
	// TestBeingCreatedDuringFirstCall's.
	if n := w.csi.createCalls(); n < 3 {
		t.Errorf("CreateSnapshot called %d times, want at least 3 (ready at the third)", n)
	}
	if want := map[string]string{"copy": "reflink"}; !reflect.DeepEqual(w.csi.params, want) {
		t.Errorf("parameters %v, want %v (reserved ones left out)", w.csi.params, want)
	}
	events := w.drained()
	for _, reason := range []string{reasonCreating, reasonCreated, reasonReady} {
		if !hasEvent(events, reason, "") {
			t.Errorf("no %s event in %q", reason, events)
		}
	}
}

// The annotation is on the content while the driver is asked for the first
// time, so that snapshot-controller keeps it even if the answer never comes.
func TestBeingCreatedDuringFirstCall(t *testing.T) {
	c := dynamic("c1")
	c.Finalizers = nil // before snapshot-controller added it
	w := newWorld(t, Config{}, c)
	var during *crdv1.VolumeSnapshotContent
	w.csi.onCreate = func() { during = w.get("c1") }
	w.csi.readyAfter = 2
	pending, err := w.step("c1")
	if err != nil || !pending {
		t.Fatalf("first sync = %v, %v; want pending, nil", pending, err)
	}
	if during.Annotations[AnnBeingCreated] != "yes" || !slices.Contains(during.Finalizers, Finalizer) {
		t.Errorf("during CreateSnapshot: annotations %v finalizers %v; want being-created and the finalizer", during.Annotations, during.Finalizers)
	}
	after := w.get("c1")
	if _, ok := after.Annotations[AnnBeingCreated]; ok || after.Status == nil || after.Status.SnapshotHandle == nil || isReady(after) {
		t.Errorf("after: annotations %v status %+v; want no annotation, a handle, not ready", after.Annotations, after.Status)
	}
	// Polls of a named snapshot put no annotation back.
	during = nil
	if pending, err := w.step("c1"); err != nil || pending {
		t.Fatalf("second sync = %v, %v; want ready", pending, err)
	}
	if _, ok := during.Annotations[AnnBeingCreated]; ok {
		t.Error("the annotation was put back for a poll of a snapshot already named in the status")
	}
	// A ready snapshot is not asked about again.
	if pending, err := w.step("c1"); err != nil || pending {
		t.Fatalf("third sync = %v, %v; want nothing to do", pending, err)
	}
	if n := w.csi.createCalls(); n != 2 {
		t.Errorf("CreateSnapshot called %d times, want 2: none for a ready snapshot", n)
	}
}

func TestCreateFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		keepsMark bool // the being-created annotation stays: a snapshot may exist
	}{
		{"final", status.Error(codes.InvalidArgument, "bad parameter copy"), false},
		{"timeout", status.Error(codes.DeadlineExceeded, "took too long"), true},
		{"not gRPC", context.DeadlineExceeded, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Config{}, dynamic("c1"))
			w.csi.errs = []error{tc.err, tc.err}
			if _, err := w.step("c1"); err == nil {
				t.Fatal("sync succeeded; want the driver's error")
			}
			c := w.get("c1")
			_, marked := c.Annotations[AnnBeingCreated]
			if marked != tc.keepsMark {
				t.Errorf("being-created annotation present = %v, want %v", marked, tc.keepsMark)
			}
			if c.Status == nil || c.Status.Error == nil || !strings.Contains(*c.Status.Error.Message, status.Convert(tc.err).Message()) || c.Status.Error.Time == nil {
				t.Fatalf("status %+v; want an error with the driver's message and a time", c.Status)
			}
			if ev := w.drained(); !hasEvent(ev, reasonCreateFailed, status.Convert(tc.err).Message()) {
				t.Errorf("events %q; want %s", ev, reasonCreateFailed)
			}
			// The same failure again is not told again.
			if _, err := w.step("c1"); err == nil {
				t.Fatal("second sync succeeded")
			}
			if ev := w.drained(); hasEvent(ev, reasonCreateFailed, "") {
				t.Errorf("the same failure was recorded twice: %q", ev)
			}
			// And once the driver succeeds, the error is gone.
			if pending, err := w.step("c1"); err != nil || pending {
				t.Fatalf("third sync = %v, %v; want ready", pending, err)
			}
			if c := w.get("c1"); !isReady(c) || c.Status.Error != nil {
				t.Errorf("status %+v; want ready without error", c.Status)
			}
		})
	}
}

func TestCreateRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*crdv1.VolumeSnapshotContent, *crdv1.VolumeSnapshotClass)
		want string
	}{
		{"class names secrets", func(_ *crdv1.VolumeSnapshotContent, cl *crdv1.VolumeSnapshotClass) {
			cl.Parameters[reservedPrefix+"snapshotter-secret-name"] = "s"
		}, "remove those parameters"},
		{"no class", func(c *crdv1.VolumeSnapshotContent, _ *crdv1.VolumeSnapshotClass) {
			c.Spec.VolumeSnapshotClassName = nil
		}, "names no VolumeSnapshotClass"},
		{"missing class", func(c *crdv1.VolumeSnapshotContent, _ *crdv1.VolumeSnapshotClass) {
			other := "gone"
			c.Spec.VolumeSnapshotClassName = &other
		}, "create the class"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dynamic("c1")
			w := newWorld(t, Config{}, c)
			class, _ := w.client.SnapshotV1().VolumeSnapshotClasses().Get(w.ctx, "fast", metav1.GetOptions{})
			tc.mod(c, class)
			if _, err := w.client.SnapshotV1().VolumeSnapshotClasses().Update(w.ctx, class, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.client.SnapshotV1().VolumeSnapshotContents().Update(w.ctx, c, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			waitClass(t, w, class)
			_, err := w.step("c1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("sync error %v; want one that says %q", err, tc.want)
			}
			if n := w.csi.createCalls(); n != 0 {
				t.Errorf("CreateSnapshot called %d times for a refused content", n)
			}
			if ev := w.drained(); !hasEvent(ev, reasonCreateFailed, tc.want) {
				t.Errorf("events %q; want %s saying %q", ev, reasonCreateFailed, tc.want)
			}
		})
	}
}

func waitClass(t *testing.T, w *world, want *crdv1.VolumeSnapshotClass) {
	t.Helper()
	err := wait.PollUntilContextTimeout(w.ctx, time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got, err := w.s.classes.Get(want.Name)
		return err == nil && reflect.DeepEqual(got.Parameters, want.Parameters), nil
	})
	if err != nil {
		t.Fatal("the informer never saw the class change")
	}
}

func TestPreProvisioned(t *testing.T) {
	w := newWorld(t, Config{}, preProvisioned("known", "snapshot#nfs#10.0.0.5#/export#old"),
		preProvisioned("unknown", "snapshot#nfs#10.0.0.5#/export#nope"))
	w.csi.known["snapshot#nfs#10.0.0.5#/export#old"] = true
	if pending, err := w.step("known"); err != nil || pending {
		t.Fatalf("sync = %v, %v; want done", pending, err)
	}
	if c := w.get("known"); !isReady(c) || *c.Status.SnapshotHandle != "snapshot#nfs#10.0.0.5#/export#old" || *c.Status.RestoreSize != testSize {
		t.Errorf("status %+v; want ready, the handle and the size", c.Status)
	}
	if _, err := w.step("unknown"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("sync error %v; want one saying the snapshot does not exist", err)
	}
	if c := w.get("unknown"); c.Status == nil || c.Status.Error == nil || isReady(c) {
		t.Errorf("status %+v; want an error, not ready", c.Status)
	}
	if n := w.csi.createCalls(); n != 0 {
		t.Errorf("CreateSnapshot called %d times for pre-provisioned contents", n)
	}
}

func TestNotServed(t *testing.T) {
	other := dynamic("other-driver")
	other.Spec.Driver = "nfs.csi.k8s.io"
	group := dynamic("group-member")
	group.Annotations = map[string]string{annGroupMember: "g1"}
	w := newWorld(t, Config{Owns: func(h string) bool { return h != testVolume }}, dynamic("not-mine"), other, group)
	for _, name := range []string{"not-mine", "other-driver", "group-member"} {
		if pending, err := w.step(name); err != nil || pending {
			t.Errorf("%s: sync = %v, %v; want nothing done", name, pending, err)
		}
		if c := w.get(name); c.Status != nil || c.Annotations[AnnBeingCreated] != "" || c.Labels[ManagedByLabel] != "" {
			t.Errorf("%s: touched: %+v", name, c)
		}
	}
	if n := w.csi.createCalls(); n != 0 {
		t.Errorf("CreateSnapshot called %d times", n)
	}
}

// The controller hands an unlabelled content of a local volume or snapshot
// (pre-provisioned, or made without distributed snapshotting) to the node
// its handle names, and cuts nothing itself.
func TestControllerLabelsLocalContents(t *testing.T) {
	vol := dynamic("local-volume")
	local := "local#n2#pv-1#pv-1#delete"
	vol.Spec.Source.VolumeHandle = &local
	snap := preProvisioned("local-snapshot", "snapshot#local#n3#old")
	w := newWorld(t, Config{Owns: func(h string) bool {
		return !strings.HasPrefix(h, "local#") && !strings.HasPrefix(h, "snapshot#local#")
	}}, vol, snap)
	for name, node := range map[string]string{"local-volume": "n2", "local-snapshot": "n3"} {
		if _, err := w.step(name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c := w.get(name); c.Labels[ManagedByLabel] != node || c.Status != nil {
			t.Errorf("%s: labels %v, status %+v; want %s=%s and nothing else", name, c.Labels, c.Status, ManagedByLabel, node)
		}
	}
	if ev := w.drained(); !hasEvent(ev, reasonHandedToNode, "n2") {
		t.Errorf("events %q; want %s", ev, reasonHandedToNode)
	}
	if n := w.csi.createCalls(); n != 0 {
		t.Errorf("CreateSnapshot called %d times", n)
	}
}

// A node plugin sees only the contents labelled with its node.
func TestNodeWatchesItsLabel(t *testing.T) {
	mine, theirs := dynamic("mine"), dynamic("theirs")
	mine.Labels = map[string]string{ManagedByLabel: "n1"}
	theirs.Labels = map[string]string{ManagedByLabel: "n2"}
	w := newWorld(t, Config{NodeName: "n1"}, mine, theirs, dynamic("unlabelled"))
	list, err := w.s.contents.List(labelsEverything())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	if !reflect.DeepEqual(names, []string{"mine"}) {
		t.Errorf("node n1 watches %v, want [mine]", names)
	}
	if _, err := w.s.classes.Get("fast"); err != nil {
		t.Errorf("node n1 does not see the class: %v", err)
	}
}

func TestWorthSync(t *testing.T) {
	base := dynamic("c1")
	base.ResourceVersion = "1"
	ready, notReady := true, false
	for _, tc := range []struct {
		name string
		mod  func(*crdv1.VolumeSnapshotContent)
		want bool
	}{
		{"resync", func(c *crdv1.VolumeSnapshotContent) { c.ResourceVersion = "1" }, true},
		{"status only", func(c *crdv1.VolumeSnapshotContent) {
			c.Status = &crdv1.VolumeSnapshotContentStatus{ReadyToUse: &notReady}
		}, false},
		{"own annotation", func(c *crdv1.VolumeSnapshotContent) {
			c.Annotations = map[string]string{AnnBeingCreated: "yes"}
		}, false},
		{"finalizer", func(c *crdv1.VolumeSnapshotContent) { c.Finalizers = nil }, false},
		{"turned ready", func(c *crdv1.VolumeSnapshotContent) {
			c.Status = &crdv1.VolumeSnapshotContentStatus{ReadyToUse: &ready}
		}, true},
		{"let go", func(c *crdv1.VolumeSnapshotContent) { deleting(c, true) }, true},
	} {
		cur := base.DeepCopy()
		cur.ResourceVersion = "2"
		tc.mod(cur)
		if got := worthSync(base, cur); got != tc.want {
			t.Errorf("%s: worthSync = %v, want %v", tc.name, got, tc.want)
		}
	}
}
