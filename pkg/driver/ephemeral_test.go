package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
	"github.com/stowage-csi/stowage/pkg/quota/quotatest"
)

func TestParseInline(t *testing.T) {
	pod := map[string]string{ContextEphemeral: "true", ContextPodUID: "uid-1", ContextPodNS: "ns", ContextPodName: "p", ContextPodSA: "default"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range pod {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		attrs   map[string]string
		want    int64
		wantErr string
	}{
		{"default size", with(), DefaultCapacity, ""},
		{"binary suffix", with("size", "64Mi"), 64 << 20, ""},
		{"decimal suffix", with("size", "1G"), 1e9, ""},
		{"not a quantity", with("size", "lots"), 0, "not a Kubernetes quantity"},
		{"zero", with("size", "0"), 0, "more than zero"},
		{"negative", with("size", "-1Gi"), 0, "more than zero"},
		{"unknown key", with("size", "1Gi", "backend", "nfs", "sise", "2Gi"), 0, "backend, sise is not known"},
		{"no pod", map[string]string{ContextEphemeral: "true", "size": "1Gi"}, 0, "podInfoOnMount"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseInline(tt.attrs)
			if tt.wantErr != "" {
				if code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want InvalidArgument with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || r.size != tt.want || r.pod != "uid-1" {
				t.Fatalf("parseInline = %+v, %v; want size %d of pod uid-1", r, err, tt.want)
			}
		})
	}
}

// inlinePod is one pod's inline volume as kubelet publishes it.
type inlinePod struct {
	uid, volumeID, target string
}

func newInlinePod(kubelet, uid string) inlinePod {
	return inlinePod{uid: uid, volumeID: "csi-" + strings.Repeat(uid[:1], 64),
		target: filepath.Join(kubelet, "pods", uid, "volumes", "kubernetes.io~csi", "scratch", "mount")}
}

func (p inlinePod) publish(size string) *csi.NodePublishVolumeRequest {
	ctx := map[string]string{ContextEphemeral: "true", ContextPodUID: p.uid, ContextPodNS: "default", ContextPodName: "pod-" + p.uid}
	if size != "" {
		ctx[EphemeralSize] = size
	}
	return &csi.NodePublishVolumeRequest{VolumeId: p.volumeID, TargetPath: p.target, VolumeContext: ctx,
		VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER)}
}

func (p inlinePod) unpublish() *csi.NodeUnpublishVolumeRequest {
	return &csi.NodeUnpublishVolumeRequest{VolumeId: p.volumeID, TargetPath: p.target}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestInlineLifecycle publishes an inline volume twice (one bind), writes
// through the pod's target, reads its stats, and unpublishes twice: the
// directory and its record are gone afterwards.
func TestInlineLifecycle(t *testing.T) {
	d, base, kubelet := newRealLocalNode(t)
	ctx := context.Background()
	pod := newInlinePod(kubelet, "a1")
	for range 2 {
		if _, err := d.NodePublishVolume(ctx, pod.publish("64Mi")); err != nil {
			t.Fatalf("NodePublishVolume: %v", err)
		}
	}
	if n := mountsAt(t, pod.target); n != 1 {
		t.Fatalf("%d mounts on the target after two publishes, want 1", n)
	}
	dir := filepath.Join(base, d.inlineID(pod.volumeID).Dir)
	if err := os.WriteFile(filepath.Join(pod.target, "scratch"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(dir, "scratch")) {
		t.Fatalf("a file written on the target is not in %s", dir)
	}
	recs := records(t, base)
	if len(recs) != 1 || !strings.Contains(recs[0], `"pod":"a1"`) || !strings.Contains(recs[0], pod.target) {
		t.Fatalf("records = %q, want one naming pod a1 and its target", recs)
	}
	st, err := d.measure(ctx, d.inlineID(pod.volumeID), pod.target)
	if err != nil || st.abnormal != nil || st.response().Usage[0].Total != 64<<20 {
		t.Fatalf("stats = %+v, %v; want a total of 64 MiB", st, err)
	}
	if _, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: pod.volumeID, VolumePath: pod.target}); err != nil {
		t.Fatalf("NodeGetVolumeStats: %v", err)
	}
	for range 2 {
		if _, err := d.NodeUnpublishVolume(ctx, pod.unpublish()); err != nil {
			t.Fatalf("NodeUnpublishVolume: %v", err)
		}
	}
	if exists(dir) || exists(pod.target) || len(records(t, base)) != 0 {
		t.Fatalf("after unpublish: dir %v, target %v, records %q; want all gone", exists(dir), exists(pod.target), records(t, base))
	}
}

func records(t *testing.T, base string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(base, ".stowage", "vol-*.json"))
	var out []string
	for _, n := range names {
		target, err := os.Readlink(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, target)
	}
	return out
}

// TestInlineRefused covers what is refused, and that nothing is left behind
// by a refusal.
func TestInlineRefused(t *testing.T) {
	d, base, kubelet := newRealLocalNode(t)
	ctx := context.Background()
	pod := newInlinePod(kubelet, "b2")

	_, err := d.NodePublishVolume(ctx, pod.publish("1Ei"))
	if code(err) != codes.ResourceExhausted {
		t.Errorf("1Ei: %v, want ResourceExhausted", err)
	}
	noPodInfo := pod.publish("1Gi")
	noPodInfo.VolumeContext = map[string]string{EphemeralSize: "1Gi"}
	if _, err := d.NodePublishVolume(ctx, noPodInfo); code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "podInfoOnMount") {
		t.Errorf("without pod info: %v, want FailedPrecondition naming podInfoOnMount", err)
	}
	block := pod.publish("1Gi")
	block.VolumeCapability = &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	if _, err := d.NodePublishVolume(ctx, block); code(err) != codes.InvalidArgument {
		t.Errorf("block: %v, want InvalidArgument", err)
	}
	if exists(filepath.Join(base, ephemeralRoot)) || len(records(t, base)) != 0 {
		t.Fatalf("a refused publish left %s or records %q", ephemeralRoot, records(t, base))
	}

	// A directory nobody's record names is never taken over, nor removed.
	dir := filepath.Join(base, d.inlineID(pod.volumeID).Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.NodePublishVolume(ctx, pod.publish("1Mi")); code(err) != codes.FailedPrecondition {
		t.Errorf("over an unrecorded directory: %v, want FailedPrecondition", err)
	}
	if _, err := d.NodeUnpublishVolume(ctx, pod.unpublish()); err != nil || !exists(dir) {
		t.Errorf("unpublish of an unrecorded directory: %v, exists %v; want success and the directory kept", err, exists(dir))
	}
	os.Remove(dir)

	// The same volume ID for another pod (a record that is not its own).
	if _, err := d.NodePublishVolume(ctx, pod.publish("1Mi")); err != nil {
		t.Fatal(err)
	}
	other := pod.publish("1Mi")
	other.VolumeContext[ContextPodUID] = "someone-else"
	other.TargetPath = filepath.Join(kubelet, "pods", "someone-else", "volumes", "kubernetes.io~csi", "scratch", "mount")
	if _, err := d.NodePublishVolume(ctx, other); code(err) != codes.FailedPrecondition {
		t.Errorf("another pod's volume: %v, want FailedPrecondition", err)
	}
}

// TestSweepInline: after a plugin restart, an inline volume whose target
// kubelet removed is swept; one whose target is still there (its pod
// lives, mounted or not), one whose kubelet directory this plugin cannot
// see, and a directory without a record all stay.
func TestSweepInline(t *testing.T) {
	d, base, kubelet := newRealLocalNode(t)
	ctx := context.Background()
	gone, alive, unmounted := newInlinePod(kubelet, "c3"), newInlinePod(kubelet, "d4"), newInlinePod(kubelet, "e5")
	unseen := newInlinePod(filepath.Join(kubelet, "not-visible"), "f6")
	for _, p := range []inlinePod{gone, alive, unmounted, unseen} {
		if _, err := d.NodePublishVolume(ctx, p.publish("1Mi")); err != nil {
			t.Fatal(err)
		}
	}
	// The plugin was away: kubelet's teardown of gone finished without it
	// (force-deleted pod), and a reboot unmounted the others.
	for _, p := range []inlinePod{gone, unmounted, unseen} {
		if err := syscall.Unmount(p.target, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(kubelet, "pods", gone.uid)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(kubelet, "not-visible")); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(base, ephemeralRoot, "csi-stray")
	if err := os.MkdirAll(stray, 0o755); err != nil {
		t.Fatal(err)
	}

	restarted, err := New(d.opts)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := restarted.SweepInline(ctx)
	if err != nil || removed != 1 {
		t.Fatalf("SweepInline = %d, %v; want 1 removed", removed, err)
	}
	dirOf := func(p inlinePod) string { return filepath.Join(base, d.inlineID(p.volumeID).Dir) }
	if exists(dirOf(gone)) {
		t.Errorf("the volume of a pod kubelet finished with is still there")
	}
	for _, p := range []inlinePod{alive, unmounted, unseen} {
		if !exists(dirOf(p)) {
			t.Errorf("the volume of pod %s was swept", p.uid)
		}
	}
	if !exists(stray) || len(records(t, base)) != 3 {
		t.Errorf("stray dir kept %v, %d records; want kept and 3", exists(stray), len(records(t, base)))
	}
}

// TestInlineQuota writes past an inline volume's size through the published
// target, as a pod would, where the base path has project quotas. XFS
// answers ENOSPC, ext4's VFS quota code EDQUOT.
func TestInlineQuota(t *testing.T) {
	for _, tt := range []struct {
		kind  quotatest.Kind
		errno syscall.Errno
	}{{quotatest.XFSPrjQuota, syscall.ENOSPC}, {quotatest.Ext4PrjQuota, syscall.EDQUOT}} {
		t.Run(tt.kind.Name, func(t *testing.T) {
			base := filepath.Join(quotatest.Mount(t, tt.kind), "local")
			if err := os.MkdirAll(base, 0o755); err != nil {
				t.Fatal(err)
			}
			store, err := local.Open(base)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			q, err := local.NewQuota(store)
			if err != nil {
				t.Fatal(err)
			}
			d, _, kubelet := newRealLocalNode(t)
			d, err = New(Options{Name: "csi.stowage.io", NodeID: "node-a", Mounter: d.opts.Mounter,
				Backends: []backend.Backend{local.NewBackend("node-a", store, q)}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			pod := newInlinePod(kubelet, "a7")
			if _, err := d.NodePublishVolume(ctx, pod.publish("4Mi")); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Unmount(pod.target, syscall.MNT_DETACH) })
			if err := writeAsPod(filepath.Join(pod.target, "a"), 3<<20); err != nil {
				t.Fatalf("3 MiB into 4 MiB: %v", err)
			}
			if err := writeAsPod(filepath.Join(pod.target, "b"), 2<<20); !errors.Is(err, tt.errno) {
				t.Fatalf("writing past the size: %v, want %v", err, tt.errno)
			}
			resp, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: pod.volumeID, VolumePath: pod.target})
			if err != nil || resp.GetUsage()[0].GetTotal() != 4<<20 || resp.GetUsage()[0].GetUsed() < 3<<20 {
				t.Fatalf("stats = %v, %v; want 4 MiB total, at least 3 MiB used", resp, err)
			}
			if _, err := d.NodeUnpublishVolume(ctx, pod.unpublish()); err != nil {
				t.Fatal(err)
			}
			if mounted, _ := mount.New("").IsMountPoint(pod.target); mounted {
				t.Fatal("target still mounted")
			}
		})
	}
}

// writeAsPod writes n bytes on an OS thread without CAP_SYS_RESOURCE, as
// an ordinary pod would: that capability may exceed quota limits.
func writeAsPod(p string, n int) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its reduced capabilities
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			done <- fmt.Errorf("capget: %w", err)
			return
		}
		caps[0].Effective &^= 1 << unix.CAP_SYS_RESOURCE
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			done <- fmt.Errorf("capset: %w", err)
			return
		}
		f, err := os.Create(p)
		if err != nil {
			done <- err
			return
		}
		_, err = f.Write(make([]byte, n))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return <-done
}

// TestInlineNotDeletedThroughAPV: a PV handle an admin writes for an inline
// volume's directory, static or with the volume's name, never removes it.
func TestInlineNotDeletedThroughAPV(t *testing.T) {
	d, base, kubelet := newRealLocalNode(t)
	ctx := context.Background()
	pod := newInlinePod(kubelet, "a8")
	if _, err := d.NodePublishVolume(ctx, pod.publish("1Mi")); err != nil {
		t.Fatal(err)
	}
	id := d.inlineID(pod.volumeID)
	static := id
	static.Name, static.OnDelete = "", ""
	for _, h := range []string{static.String(), id.String()} {
		if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: h}); code(err) != codes.FailedPrecondition {
			t.Errorf("DeleteVolume(%s): %v, want FailedPrecondition", h, err)
		}
	}
	if !exists(filepath.Join(base, id.Dir)) {
		t.Fatal("the inline volume was removed through a PV handle")
	}
}
