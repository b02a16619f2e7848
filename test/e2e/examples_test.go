package e2e

// One test per directory of examples/: each applies the exact files and checks what the example's
// README says you should see.

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const readOnlyFS = "Read-only file system"

func TestExampleWebSharedVolumes(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "web")
	e.apply(t, ns, "web-shared-volumes/htdocs-pvc.yaml")
	e.apply(t, ns, "web-shared-volumes/service.yaml")
	e.apply(t, ns, "web-shared-volumes/statefulset.yaml")
	e.waitPodReady(t, ns, "web-0")
	e.waitPodReady(t, ns, "web-1")

	// Three Bound claims: one shared NFS RWX, one local RWO per replica.
	htdocs := e.kube(t, ns).WaitBound("web-htdocs")
	if htdocs.Spec.StorageClassName != "stowage-nfs" || htdocs.Spec.AccessModes[0] != corev1.ReadWriteMany {
		t.Errorf("web-htdocs PV: class %q, modes %v; want stowage-nfs, RWX", htdocs.Spec.StorageClassName, htdocs.Spec.AccessModes)
	}
	logVolumes := map[string]string{}
	for _, claim := range []string{"logs-web-0", "logs-web-1"} {
		pv := e.kube(t, ns).WaitBound(claim)
		if pv.Spec.StorageClassName != "stowage-local" {
			t.Errorf("%s is bound to %s of class %q, want stowage-local", claim, pv.Name, pv.Spec.StorageClassName)
		}
		logVolumes[claim] = pv.Name
	}
	if logVolumes["logs-web-0"] == logVolumes["logs-web-1"] {
		t.Errorf("both replicas got the same log volume %s", logVolumes["logs-web-0"])
	}

	// Both replicas' agents write into the one NFS directory.
	waiter(t, podTimeout).Eventually("both heartbeat files in web-0's htdocs", func(context.Context) (bool, error) {
		out, err := execIn(ns, "web-0", "web", "ls /srv/htdocs")
		return err == nil && strings.Contains(out, "web-0.txt") && strings.Contains(out, "web-1.txt") && strings.Contains(out, "index.html"), err
	})
	page := mustExec(t, ns, "web-1", "web", `printf "GET / HTTP/1.0\r\n\r\n" | nc 127.0.0.1 8080`)
	if !strings.Contains(page, "200 OK") || !strings.Contains(page, "Last written by web-") {
		t.Errorf("web-1 served %q, want a 200 with the agent's page", page)
	}

	// The web server's mount is read-only, the agent's is not.
	out, err := execIn(ns, "web-0", "web", "touch /srv/htdocs/x")
	if err == nil || !strings.Contains(out, readOnlyFS) {
		t.Errorf("touch in the web container: err %v, output %q; want %q", err, out, readOnlyFS)
	}
	mustExec(t, ns, "web-0", "content", "touch /srv/htdocs/agent-can-write && rm /srv/htdocs/agent-can-write")

	// 25 requests push web-0's log past the rotation threshold; web-1 has its own log volume.
	mustExec(t, ns, "web-0", "web", `for i in $(seq 25); do printf "GET / HTTP/1.0\r\n\r\n" | nc 127.0.0.1 8080 >/dev/null; done`)
	e.waitLogs(t, ns, "web-0", "log-rotator", "rotated")
	if out := mustExec(t, ns, "web-0", "log-rotator", "ls /var/log/web"); !strings.Contains(out, "access.log.1") {
		t.Errorf("web-0 logs after rotation: %q, want access.log.1", out)
	}
	if out := mustExec(t, ns, "web-1", "log-rotator", "ls /var/log/web"); strings.Contains(out, "access.log.1") {
		t.Errorf("web-1 logs: %q; web-1 had no requests to rotate, so it does not share web-0's log volume?", out)
	}

	// The log volume survives the pod.
	e.replacePod(t, ns, "web-0")
	if out := mustExec(t, ns, "web-0", "log-rotator", "ls /var/log/web"); !strings.Contains(out, "access.log.1") {
		t.Errorf("the new web-0 sees %q in its log volume, want the old access.log.1", out)
	}
}

func TestExampleInitSeed(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "seed")
	e.apply(t, ns, "init-seed/seed-content.yaml")
	e.apply(t, ns, "init-seed/pvc.yaml")
	e.apply(t, ns, "init-seed/pod.yaml")
	e.waitPodReady(t, ns, "seeded-app")
	if got := e.logs(t, ns, "seeded-app", "seed"); !strings.Contains(got, "seeded config.ini and records.txt") {
		t.Errorf("first seed log %q, want the seed to copy the files", got)
	}
	e.waitLogs(t, ns, "seeded-app", "app", "seeded at: ", "greeting = hello from the seed", "records: 3", "starts so far: 1")

	// The data is kept: a new pod is not seeded again and the app's own writes survive.
	e.deletePod(t, ns, "seeded-app")
	e.apply(t, ns, "init-seed/pod.yaml")
	e.waitPodReady(t, ns, "seeded-app")
	if got := e.logs(t, ns, "seeded-app", "seed"); !strings.Contains(got, "already seeded at") {
		t.Errorf("second seed log %q, want it to leave the data alone", got)
	}
	e.waitLogs(t, ns, "seeded-app", "app", "starts so far: 2")
}

func TestExampleDatabaseRestart(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "ledger")
	e.apply(t, ns, "database-restart/service.yaml")
	e.apply(t, ns, "database-restart/statefulset.yaml")
	e.waitPodReady(t, ns, "ledger-0")
	pv := e.kube(t, ns).WaitBound("data-ledger-0")

	// The local PV is pinned to its node.
	terms := pv.Spec.NodeAffinity
	if terms == nil || terms.Required == nil || len(terms.Required.NodeSelectorTerms) == 0 {
		t.Fatalf("PV %s has no required node affinity", pv.Name)
	}
	expr := terms.Required.NodeSelectorTerms[0].MatchExpressions[0]
	if expr.Key != "topology.stowage.io/node" || len(expr.Values) != 1 || expr.Values[0] != e.nodeName {
		t.Errorf("PV %s node affinity %+v, want topology.stowage.io/node In [%s]", pv.Name, expr, e.nodeName)
	}

	// Let it write a few records, then replace the pod.
	waiter(t, podTimeout).Eventually("three records in the journal", func(context.Context) (bool, error) {
		out, err := execIn(ns, "ledger-0", "", "wc -l < /data/journal.log")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return err == nil && n >= 3, err
	})
	e.replacePod(t, ns, "ledger-0")
	if got := e.kube(t, ns).WaitBound("data-ledger-0"); got.Name != pv.Name {
		t.Errorf("data-ledger-0 now bound to %s, was %s", got.Name, pv.Name)
	}
	startup := strings.SplitN(e.logs(t, ns, "ledger-0", "db"), "\n", 2)[0]
	if !strings.HasPrefix(startup, "startup: found ") || strings.HasPrefix(startup, "startup: found 0 ") {
		t.Errorf("the new pod's first log line is %q, want it to find the old records", startup)
	}
	boots := strings.Fields(mustExec(t, ns, "ledger-0", "", "wc -l < /data/boots.log"))
	if len(boots) != 1 || boots[0] != "2" {
		t.Errorf("boots.log has %v lines, want 2 (one per pod)", boots)
	}
	// Record numbers continue without a gap or a restart: line i is record i.
	journal := mustExec(t, ns, "ledger-0", "", "cat /data/journal.log")
	for i, line := range strings.Split(strings.TrimSpace(journal), "\n") {
		if !strings.HasPrefix(line, strconv.Itoa(i+1)+" ") {
			t.Fatalf("journal line %d is %q, want record %d:\n%s", i+1, line, i+1, journal)
		}
	}
}

func TestExampleStaticRetain(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "static")
	// The admin's step 1: the directory on the NFS server.
	dir := filepath.Join(e.exportDir, "static-data")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	e.apply(t, ns, "static-retain/pv.yaml")
	e.apply(t, ns, "static-retain/pvc.yaml")
	e.apply(t, ns, "static-retain/pod.yaml")
	pv := e.kube(t, ns).WaitBound("static-data")
	if pv.Name != "static-data" || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Errorf("claim bound to %s with policy %s, want static-data, Retain", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)
	}
	e.waitPodReady(t, ns, "static-user")
	e.waitLogs(t, ns, "static-user", "", "written by static-user")
	if lines := readLines(t, filepath.Join(dir, "hello.txt")); len(lines) != 1 {
		t.Errorf("hello.txt on the server has %d lines, want 1: %q", len(lines), lines)
	}

	// Release: the data stays and the PV is not reusable.
	e.deletePod(t, ns, "static-user")
	e.kube(t, ns).DeleteClaim("static-data")
	released := e.kube(t, ns).WaitPVPhase("static-data", corev1.VolumeReleased)
	if released.Spec.ClaimRef == nil || released.Spec.ClaimRef.Name != "static-data" {
		t.Errorf("Released PV claimRef %+v, want the old claim", released.Spec.ClaimRef)
	}
	if _, err := os.Stat(filepath.Join(dir, "hello.txt")); err != nil {
		t.Errorf("Retain lost the data: %v", err)
	}
	e.apply(t, ns, "static-retain/pvc.yaml")
	e.kube(t, ns).WaitEvent("PersistentVolumeClaim", "static-data", "FailedBinding", "already bound to a different claim")
	if c, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), "static-data", metav1.GetOptions{}); err != nil || c.Status.Phase != corev1.ClaimPending {
		t.Fatalf("new claim for the Released PV: %v, phase %v; want Pending", err, c.Status.Phase)
	}

	// Reclaim by hand: reuse the PV, the new pod finds the old data.
	e.patchPV(t, "static-data", `{"spec":{"claimRef":null}}`)
	e.kube(t, ns).WaitBound("static-data")
	e.apply(t, ns, "static-retain/pod.yaml")
	e.waitPodReady(t, ns, "static-user")
	if got := e.waitLogs(t, ns, "static-user", "", "written by static-user"); strings.Count(got, "written by static-user") != 2 {
		t.Errorf("second pod's log %q, want the old line and its own", got)
	}

	// Retire it: deleting a Retain PV never touches the data.
	e.deletePod(t, ns, "static-user")
	e.kube(t, ns).DeleteClaim("static-data")
	e.deletePV(t, "static-data")
	if lines := readLines(t, filepath.Join(dir, "hello.txt")); len(lines) != 2 {
		t.Errorf("after deleting the PV, hello.txt has %q, want both lines kept", lines)
	}
}

func TestExampleRecycle(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "recycle")
	e.apply(t, ns, "recycle/storageclass.yaml")
	e.apply(t, ns, "recycle/first.yaml")
	e.waitPodReady(t, ns, "recycle-writer")
	pv := e.kube(t, ns).WaitBound("recycle-first")
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRecycle {
		t.Fatalf("PV %s has policy %s, want Recycle from the class parameter", pv.Name, pv.Spec.PersistentVolumeReclaimPolicy)
	}
	dir := e.hostDir(t, pv)
	if got := entries(t, dir); len(got) < 3 {
		t.Fatalf("the writer's volume %s holds %v, want secret.txt, nested, .hidden", dir, got)
	}
	// Whatever happens below, end the cycle as the README says: Delete while bound, then release.
	t.Cleanup(func() { e.patchPVIfExists(t, pv.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`) })

	e.deletePod(t, ns, "recycle-writer")
	e.kube(t, ns).DeleteClaim("recycle-first")
	available := e.kube(t, ns).WaitPVPhase(pv.Name, corev1.VolumeAvailable)
	if available.Spec.ClaimRef != nil {
		t.Errorf("Available PV still refers to %+v", available.Spec.ClaimRef)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("recycled volume %s still holds %v", dir, got)
	}

	e.apply(t, ns, "recycle/second.yaml")
	e.waitPodReady(t, ns, "recycle-reader")
	if got := e.kube(t, ns).WaitBound("recycle-second"); got.Name != pv.Name {
		t.Errorf("recycle-second bound %s, want the recycled %s", got.Name, pv.Name)
	}
	e.waitLogs(t, ns, "recycle-reader", "", "volume is empty")

	// Clean up as the README does; the PV and its directory go.
	e.patchPV(t, pv.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`)
	e.deletePod(t, ns, "recycle-reader")
	e.kube(t, ns).DeleteClaim("recycle-second")
	e.kube(t, ns).WaitPVGone(pv.Name)
	assertGone(t, dir)
}

func TestExampleReadOnlyMany(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "rox")
	e.apply(t, ns, "read-only-many/storageclass.yaml")
	e.apply(t, ns, "read-only-many/fill.yaml")
	waiter(t, podTimeout).Eventually("job content-fill complete", func(ctx context.Context) (bool, error) {
		j, err := e.client.BatchV1().Jobs(ns).Get(ctx, "content-fill", metav1.GetOptions{})
		return err == nil && j.Status.Succeeded > 0, err
	})
	writer := e.kube(t, ns).WaitBound("content-rw")
	// readers.yaml names the directory with the short, static form of the handle.
	wantHandle := "nfs#" + e.nfsServer + "#/export#content/content-rw#" + writer.Name + "#delete"
	if writer.Spec.CSI.VolumeHandle != wantHandle {
		t.Fatalf("writer's handle %q, want %q (readers.yaml depends on its directory)", writer.Spec.CSI.VolumeHandle, wantHandle)
	}
	dir := e.hostDir(t, writer)
	// Whatever happens, hand the directory back to Stowage to delete (the README's clean-up).
	t.Cleanup(func() {
		e.patchPVIfExists(t, writer.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`)
	})

	e.apply(t, ns, "read-only-many/readers.yaml")
	waiter(t, podTimeout).Eventually("3 content-readers ready", func(ctx context.Context) (bool, error) {
		d, err := e.client.AppsV1().Deployments(ns).Get(ctx, "content-readers", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 3, err
	})
	ro := e.kube(t, ns).WaitBound("content-ro")
	if ro.Name != "content-ro" || ro.Spec.AccessModes[0] != corev1.ReadOnlyMany {
		t.Errorf("content-ro bound %s with %v, want the ROX PV content-ro", ro.Name, ro.Spec.AccessModes)
	}
	pods, err := e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=content-readers"})
	if err != nil || len(pods.Items) != 3 {
		t.Fatalf("reader pods: %v, %d", err, len(pods.Items))
	}
	for _, p := range pods.Items {
		// None of them asked for readOnly; Stowage mounts ROX read-only itself.
		e.waitLogs(t, ns, p.Name, "", "published at ", "100 catalog items", "write refused: ", readOnlyFS)
		out, err := execIn(ns, p.Name, "", "echo x > /content/index.html")
		if err == nil || !strings.Contains(out, readOnlyFS) {
			t.Errorf("write in %s: err %v, output %q; want %q", p.Name, err, out, readOnlyFS)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "written-by-reader")); !os.IsNotExist(err) {
		t.Errorf("a reader's file reached the server: %v", err)
	}

	// The writer is done: its claim goes, Retain keeps the data, the readers carry on.
	// Background propagation takes the Job's finished pod too; an orphaned pod would keep the
	// claim (pvc-protection) forever.
	background := metav1.DeletePropagationBackground
	if err := e.client.BatchV1().Jobs(ns).Delete(context.Background(), "content-fill", metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
		t.Fatal(err)
	}
	e.kube(t, ns).DeleteClaim("content-rw")
	e.kube(t, ns).WaitPVPhase(writer.Name, corev1.VolumeReleased)
	if p := e.kube(t, ns).PV("content-ro"); p.Status.Phase != corev1.VolumeBound {
		t.Errorf("content-ro is %s after the writer's claim went, want Bound", p.Status.Phase)
	}
	mustExec(t, ns, pods.Items[0].Name, "", "cat /content/PUBLISHED")

	// Clean up as the README says: readers first, then the writer's PV switched to Delete goes with
	// its directory.
	if err := e.client.AppsV1().Deployments(ns).Delete(context.Background(), "content-readers", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		e.waitPodGone(t, ns, p.Name)
	}
	e.kube(t, ns).DeleteClaim("content-ro")
	e.deletePV(t, "content-ro")
	if _, err := os.Stat(filepath.Join(dir, "PUBLISHED")); err != nil {
		t.Errorf("deleting the Retain PV content-ro touched the content: %v", err)
	}
	e.patchPV(t, writer.Name, `{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`)
	e.kube(t, ns).WaitPVGone(writer.Name)
	assertGone(t, dir)
}

func TestExampleAccessModes(t *testing.T) {
	e := setup(t)
	ns := e.namespace(t, "modes")

	// ReadWriteOncePod: the second pod stays Pending, on the same node, until the first goes.
	e.apply(t, ns, "access-modes/rwop-first.yaml")
	e.waitPodReady(t, ns, "solo-a")
	e.apply(t, ns, "access-modes/rwop-second.yaml")
	e.kube(t, ns).WaitEvent("Pod", "solo-b", "FailedScheduling", "ReadWriteOncePod access mode already in-use by another pod")
	if p, err := e.client.CoreV1().Pods(ns).Get(context.Background(), "solo-b", metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodPending {
		t.Fatalf("solo-b: %v, want Pending while solo-a runs", err)
	}
	e.deletePod(t, ns, "solo-a")
	e.waitPodReady(t, ns, "solo-b")
	e.waitLogs(t, ns, "solo-b", "", "solo-a owns the volume")

	// ReadWriteOnce: both pods on the one node share the volume.
	e.apply(t, ns, "access-modes/rwo.yaml")
	a := e.waitPodReady(t, ns, "rwo-a")
	b := e.waitPodReady(t, ns, "rwo-b")
	if a.Spec.NodeName != b.Spec.NodeName {
		t.Errorf("rwo-a on %s, rwo-b on %s: a local RWO volume keeps them on one node", a.Spec.NodeName, b.Spec.NodeName)
	}
	waiter(t, podTimeout).Eventually("both pods' lines in /data/visits", func(context.Context) (bool, error) {
		out, err := execIn(ns, "rwo-a", "", "cat /data/visits")
		return err == nil && strings.Contains(out, " rwo-a") && strings.Contains(out, " rwo-b"), err
	})
}

// patchPVIfExists is for cleanups: a PV already gone is fine.
func (e *env) patchPVIfExists(t *testing.T, name, patch string) {
	_, err := e.client.CoreV1().PersistentVolumes().Patch(context.Background(), name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
	if err != nil && !strings.Contains(err.Error(), "not found") {
		t.Errorf("patch PV %s: %v", name, err)
	}
}

func readLines(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// assertGone checks that a volume's directory no longer exists on the host.
func assertGone(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume directory %s still exists after its PV was deleted (stat: %v)", dir, err)
	}
}
