package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	snapshotv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// TestRestoreReachesCreateVolume: a claim whose dataSourceRef names a
// VolumeSnapshot waits, with an event that says why, while the snapshot is
// not ready, and reaches CreateVolume with the snapshot's handle as content
// source once it is; a claim that clones another reaches it with the source
// PV's handle. The snapshot CRDs are the chart's; no snapshot-controller
// runs here, so the test binds the snapshot to its content itself, as
// snapshot-controller would. Whether the driver can then fill the volume is
// the driver's business (csi-sanity, e2e): this test looks at what the
// provisioner asked for, in the controller's log, and that the claim's
// failure, if any, is the driver's answer and not a lookup error.
func TestRestoreReachesCreateVolume(t *testing.T) {
	h := newHarness(t)
	nfs := needNFS(t)
	snaps := installSnapshotCRDs(h)
	// Without the snapshotter: this test writes the content's status itself,
	// as if the snapshot had been cut (test/e2e cuts real ones).
	ctrl := h.controller("controller", false, "--snapshots=false")
	sc := h.nfsClass("restore", nil)
	rwo := []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}

	t.Run("from a snapshot", func(t *testing.T) {
		h := h.sub(t)
		handle := "snapshot#nfs#" + nfs.server + "#" + nfs.share + "#snap-" + h.id
		content := h.boundSnapshot(snaps, "snap", handle)
		h.claim("restored", sc, "", "1Gi", rwo, func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSourceRef = &v1.TypedObjectReference{APIGroup: ptr.To(snapshotv1.GroupName), Kind: "VolumeSnapshot", Name: "snap"}
		})
		h.WaitEvent("PersistentVolumeClaim", "restored", "ProvisioningFailed", "VolumeSnapshot "+h.ns+"/snap is not ready to use")
		if strings.Contains(ctrl.log(), "snapshot "+handle) {
			t.Fatal("CreateVolume was asked to restore a snapshot that is not ready")
		}

		content.Status = &snapshotv1.VolumeSnapshotContentStatus{
			SnapshotHandle: ptr.To(handle), ReadyToUse: ptr.To(true), RestoreSize: ptr.To(int64(1 << 20)),
		}
		if _, err := snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(h.ctx, content, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("mark content ready: %v", err)
		}
		h.waitCreateVolume(ctrl, "restored", "snapshot "+handle)
	})

	t.Run("from a claim", func(t *testing.T) {
		h := h.sub(t)
		h.claim("original", sc, "", "1Gi", rwo)
		pv := h.WaitBound("original")
		h.claim("clone", sc, "", "1Gi", rwo, func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSourceRef = &v1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "original"}
		})
		h.waitCreateVolume(ctrl, "clone", "volume "+pv.Spec.CSI.VolumeHandle)
	})

	t.Run("a clone smaller than its source is refused", func(t *testing.T) {
		h := h.sub(t)
		h.claim("big", sc, "", "2Gi", rwo)
		h.WaitBound("big")
		h.claim("small", sc, "", "1Gi", rwo, func(c *v1.PersistentVolumeClaim) {
			c.Spec.DataSourceRef = &v1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: "big"}
		})
		h.WaitEvent("PersistentVolumeClaim", "small", "ProvisioningFailed", "holds 2Gi; ask for at least that much")
	})
}

// driverAnswer is how the provisioner reports an error of the driver: its
// message, then its gRPC code in parentheses. Lookup errors have no code.
var driverAnswer = regexp.MustCompile(`\([A-Z][A-Za-z]+\)$`)

// waitCreateVolume waits until the controller has asked the driver for
// claim's volume filled from source, and checks that the claim is either
// bound or failed with the driver's answer, never with a lookup error.
func (h *harness) waitCreateVolume(ctrl *proc, claim, source string) {
	h.t.Helper()
	h.Eventually("CreateVolume for claim "+claim+" from "+source, func(context.Context) (bool, error) {
		for _, line := range strings.Split(ctrl.log(), "\n") {
			if strings.Contains(line, `"Creating volume"`) && strings.Contains(line, h.ns+"/"+claim) &&
				strings.Contains(line, `source="`+source+`"`) {
				return true, nil
			}
		}
		return false, nil
	})
	h.Eventually("claim "+claim+" bound, or failed by the driver", func(ctx context.Context) (bool, error) {
		c, err := h.c.CoreV1().PersistentVolumeClaims(h.ns).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if c.Status.Phase == v1.ClaimBound {
			return true, nil
		}
		for _, e := range h.Events("PersistentVolumeClaim", claim) {
			if strings.HasPrefix(e, "ProvisioningFailed: ") && driverAnswer.MatchString(e) {
				return true, nil
			}
		}
		return false, nil
	})
}

// boundSnapshot creates VolumeSnapshot name in the test's namespace and a
// content of the test's driver with handle, bound to each other as
// snapshot-controller binds them, the content not ready yet. It returns the
// content.
func (h *harness) boundSnapshot(snaps snapclient.Interface, name, handle string) *snapshotv1.VolumeSnapshotContent {
	h.t.Helper()
	contentName := "content-" + h.id + "-" + name
	vs, err := snaps.SnapshotV1().VolumeSnapshots(h.ns).Create(h.ctx, &snapshotv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec:       snapshotv1.VolumeSnapshotSpec{Source: snapshotv1.VolumeSnapshotSource{VolumeSnapshotContentName: &contentName}},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("create VolumeSnapshot: %v", err)
	}
	content, err := snaps.SnapshotV1().VolumeSnapshotContents().Create(h.ctx, &snapshotv1.VolumeSnapshotContent{
		ObjectMeta: metav1.ObjectMeta{Name: contentName},
		Spec: snapshotv1.VolumeSnapshotContentSpec{
			Driver:            h.driver,
			DeletionPolicy:    snapshotv1.VolumeSnapshotContentRetain,
			Source:            snapshotv1.VolumeSnapshotContentSource{SnapshotHandle: &handle},
			VolumeSnapshotRef: v1.ObjectReference{Namespace: h.ns, Name: name, UID: vs.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		h.t.Fatalf("create VolumeSnapshotContent: %v", err)
	}
	h.t.Cleanup(func() {
		_ = snaps.SnapshotV1().VolumeSnapshotContents().Delete(context.Background(), contentName, metav1.DeleteOptions{})
	})
	content.Status = &snapshotv1.VolumeSnapshotContentStatus{SnapshotHandle: &handle, ReadyToUse: ptr.To(false)}
	if content, err = snaps.SnapshotV1().VolumeSnapshotContents().UpdateStatus(h.ctx, content, metav1.UpdateOptions{}); err != nil {
		h.t.Fatalf("content status: %v", err)
	}
	vs.Status = &snapshotv1.VolumeSnapshotStatus{BoundVolumeSnapshotContentName: &contentName, ReadyToUse: ptr.To(false)}
	if _, err := snaps.SnapshotV1().VolumeSnapshots(h.ns).UpdateStatus(h.ctx, vs, metav1.UpdateOptions{}); err != nil {
		h.t.Fatalf("snapshot status: %v", err)
	}
	return content
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installSnapshotCRDs creates the chart's snapshot CRDs (they are
// cluster-wide and kept, like the chart keeps them, for the tests after
// this one) and returns a snapshot client once the API serves them.
func installSnapshotCRDs(h *harness) snapclient.Interface {
	h.t.Helper()
	chart := os.Getenv("STOWAGE_TEST_CHART")
	if chart == "" {
		chart, _ = filepath.Abs("../../charts/stowage")
	}
	args := []string{"template", h.id, chart, "--namespace", h.ns, "--kube-version", "1.34.4"}
	for _, kind := range []string{"volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots"} {
		args = append(args, "--show-only", "templates/crd-"+kind+".yaml")
	}
	cmd := exec.Command(helmBinary(h.t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		h.t.Fatalf("helm template %s: %v\n%s", chart, err, stderr.String())
	}
	rc, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		h.t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(rc).Resource(crdResource)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	n := 0
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			h.t.Fatal(err)
		}
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			h.t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			continue // a comment-only document
		}
		if _, err := dyn.Create(h.ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			h.t.Fatalf("create CRD %s: %v", u.GetName(), err)
		}
		n++
	}
	if n != 3 {
		h.t.Fatalf("the chart rendered %d snapshot CRDs, want 3", n)
	}
	snaps := snapclient.NewForConfigOrDie(rc)
	h.Eventually("the snapshot CRDs to be served", func(ctx context.Context) (bool, error) {
		_, err1 := snaps.SnapshotV1().VolumeSnapshots(h.ns).List(ctx, metav1.ListOptions{})
		_, err2 := snaps.SnapshotV1().VolumeSnapshotContents().List(ctx, metav1.ListOptions{})
		return err1 == nil && err2 == nil, nil
	})
	return snaps
}
