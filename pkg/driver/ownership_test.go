package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
	"github.com/stowage-csi/stowage/pkg/params"
)

// oneShare serves one real directory as every NFS share: the ownership
// rules live in the driver and do not depend on how the store is reached,
// so a local store stands in for the share here (the NFS store runs the
// same calls against a real server in csi-sanity and the integration tests).
type oneShare struct{ s backend.Store }

func (o oneShare) Get(context.Context, string, string) (backend.Store, error) { return o.s, nil }

func newShareDriver(t *testing.T) (*Driver, string) {
	t.Helper()
	base := t.TempDir()
	store, err := local.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	d, err := New(Options{Name: "csi.stowage.io", Backends: nfsVia(oneShare{store}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return d, base
}

// claimReq is what the provisioner sends for claim ns/name in a class with
// subDir template tmpl.
func claimReq(pv, ns, claim, tmpl string, extra map[string]string) *csi.CreateVolumeRequest {
	p := map[string]string{"backend": "nfs", "server": "10.0.0.5", "share": "/export", "subDir": tmpl,
		params.PVCName: claim, params.PVCNamespace: ns, params.PVName: pv}
	for k, v := range extra {
		p[k] = v
	}
	r := createReq(pv, 1<<20, p)
	r.VolumeCapabilities = []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
	return r
}

func mustCreate(t *testing.T, d *Driver, req *csi.CreateVolumeRequest) string {
	t.Helper()
	resp, err := d.CreateVolume(context.Background(), req)
	if err != nil {
		t.Fatalf("create %s: %v", req.GetName(), err)
	}
	return resp.GetVolume().GetVolumeId()
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantFile(t *testing.T, p, data string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil || string(b) != data {
		t.Fatalf("%s = %q, %v; want %q", p, b, err, data)
	}
}

const (
	byNamespace = "${pvc.namespace}/${pvc.name}"
	byName      = "${pvc.name}"
)

// Finding 1: two classes on one share whose templates nest. A claim of
// another namespace never gets, nor removes, the first namespace's volumes.
func TestNestedTemplatesAcrossNamespaces(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	mustCreate(t, d, claimReq("pvc-a1", "team-a", "data", byNamespace, nil))
	secret := filepath.Join(base, "team-a", "data", "secret")
	writeFile(t, secret, "team-a's")

	_, err := d.CreateVolume(ctx, claimReq("pvc-m1", "mallory", "team-a", byName, nil))
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "team-a") {
		t.Fatalf("claim team-a of namespace mallory over team-a's volumes: %v, want FailedPrecondition", err)
	}
	// Even a class that may adopt directories does not take one holding volumes.
	_, err = d.CreateVolume(ctx, claimReq("pvc-m2", "mallory", "team-a", byName, map[string]string{"adoptExisting": "true"}))
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pvc-a1") {
		t.Fatalf("adopting a directory that holds volume pvc-a1: %v, want FailedPrecondition naming it", err)
	}
	wantFile(t, secret, "team-a's")

	// The other order: mallory's volume first, then team-b's nested inside it.
	mustCreate(t, d, claimReq("pvc-m3", "mallory", "team-b", byName, nil))
	_, err = d.CreateVolume(ctx, claimReq("pvc-b1", "team-b", "data", byNamespace, nil))
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pvc-m3") {
		t.Fatalf("team-b's volume inside mallory's: %v, want FailedPrecondition naming pvc-m3", err)
	}
	if _, err := os.Stat(filepath.Join(base, "team-b", "data")); err == nil {
		t.Fatal("the refused volume's directory was left inside mallory's volume")
	}
}

// Finding 1: no directory is taken over by its name alone.
func TestCreateRefusesExistingDirectory(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	for _, dir := range []string{"full", "empty"} {
		if err := os.Mkdir(filepath.Join(base, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(base, "full", "f"), "someone's")
	for _, dir := range []string{"full", "empty"} {
		_, err := d.CreateVolume(ctx, claimReq("pvc-"+dir, "ns", dir, byName, nil))
		if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "adoptExisting") {
			t.Errorf("create over existing directory %s: %v, want FailedPrecondition", dir, err)
		}
	}
	// An admin's explicit act adopts it, data and all; deleting the claim
	// with onDelete=retain keeps it.
	id := mustCreate(t, d, claimReq("pvc-full", "ns", "full", byName, map[string]string{"adoptExisting": "true", "onDelete": "retain"}))
	wantFile(t, filepath.Join(base, "full", "f"), "someone's")
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(base, "full", "f"), "someone's")
}

// Retained data goes back only to its own namespace, and only by adoption.
func TestRetainedGoesBackOnlyToItsNamespace(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	retain := map[string]string{"onDelete": "retain"}
	id := mustCreate(t, d, claimReq("pvc-1", "team-a", "db", byName, retain))
	writeFile(t, filepath.Join(base, "db", "rows"), "1")
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatal(err)
	}
	adopt := map[string]string{"onDelete": "retain", "adoptExisting": "true"}
	for _, tt := range []struct {
		ns    string
		extra map[string]string
	}{{"team-a", retain}, {"mallory", adopt}} {
		_, err := d.CreateVolume(ctx, claimReq("pvc-2", tt.ns, "db", byName, tt.extra))
		if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pvc-1") {
			t.Errorf("namespace %s, %v: %v, want FailedPrecondition naming pvc-1", tt.ns, tt.extra, err)
		}
	}
	mustCreate(t, d, claimReq("pvc-2", "team-a", "db", byName, adopt))
	wantFile(t, filepath.Join(base, "db", "rows"), "1")
}

// Finding 2: a delete acts only for the volume the record names, and a lost
// record never turns retain into delete.
func TestDeleteChecksTheRecord(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	id := mustCreate(t, d, claimReq("pvc-1", "ns", "one", byName, nil))
	writeFile(t, filepath.Join(base, "one", "f"), "1")
	del := func(handle string) error {
		_, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: handle})
		return err
	}
	for _, handle := range []string{
		strings.Replace(id, "#pvc-1#", "#pvc-2#", 1),  // another volume's name
		strings.Replace(id, "#delete", "#archive", 1), // disagrees on onDelete
		"nfs#10.0.0.5#/export#one#pvc-1#retain",       // disagrees the other way
	} {
		if err := del(handle); code(err) != codes.FailedPrecondition {
			t.Errorf("delete %s: %v, want FailedPrecondition", handle, err)
		}
	}
	wantFile(t, filepath.Join(base, "one", "f"), "1")

	// The record lost: retain keeps, delete refuses; neither removes.
	if err := os.Remove(filepath.Join(base, ".stowage", recordName("one"))); err != nil {
		t.Fatal(err)
	}
	if err := del(id); code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "record") {
		t.Errorf("delete without a record: %v, want FailedPrecondition", err)
	}
	if err := del("nfs#10.0.0.5#/export#one#pvc-1#retain"); err != nil {
		t.Errorf("retain without a record: %v", err)
	}
	wantFile(t, filepath.Join(base, "one", "f"), "1")

	// A volume whose directory is gone and whose record is gone: done.
	if err := del("nfs#10.0.0.5#/export#never#pvc-9#delete"); err != nil {
		t.Errorf("delete of a volume never made: %v", err)
	}
}

// Finding 2: a static handle on a parent of volumes removes nothing.
func TestStaticDeleteSparesOtherVolumes(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	mustCreate(t, d, claimReq("pvc-1", "team-a", "data", byNamespace, nil))
	writeFile(t, filepath.Join(base, "team-a", "data", "f"), "1")
	_, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "nfs#10.0.0.5#/export#team-a"})
	if code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pvc-1") {
		t.Fatalf("static delete of a parent of volume pvc-1: %v, want FailedPrecondition", err)
	}
	if err := d.ScrubVolume(ctx, "nfs#10.0.0.5#/export#team-a", ""); code(err) != codes.FailedPrecondition {
		t.Fatalf("static scrub of a parent of volume pvc-1: %v, want FailedPrecondition", err)
	}
	wantFile(t, filepath.Join(base, "team-a", "data", "f"), "1")
	// A plain static directory goes, as its policy asks.
	if err := os.MkdirAll(filepath.Join(base, "static", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "nfs#10.0.0.5#/export#static"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "static")); !os.IsNotExist(err) {
		t.Fatalf("static volume with Delete kept its directory: %v", err)
	}
}

// Finding 2: the recycler's scrub acts only for the PV the record names.
func TestScrubChecksThePV(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	id := mustCreate(t, d, claimReq("pvc-1", "ns", "one", byName, map[string]string{"dirMode": "0750"}))
	writeFile(t, filepath.Join(base, "one", "f"), "1")
	if err := d.ScrubVolume(ctx, id, "pvc-other"); code(err) != codes.FailedPrecondition {
		t.Fatalf("scrub for another PV: %v, want FailedPrecondition", err)
	}
	wantFile(t, filepath.Join(base, "one", "f"), "1")
	if err := d.ScrubVolume(ctx, id, "pvc-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "one", "f")); !os.IsNotExist(err) {
		t.Fatalf("scrub left the data: %v", err)
	}
}

// Finding 6: the same name with other parameters is AlreadyExists, even
// where the parameters name another directory.
func TestSameNameOtherParameters(t *testing.T) {
	d, _ := newShareDriver(t)
	ctx := context.Background()
	mustCreate(t, d, claimReq("pvc-1", "ns", "c", byName, nil))
	for _, r := range []*csi.CreateVolumeRequest{
		claimReq("pvc-1", "ns", "c", byName, map[string]string{"dirMode": "0700"}), // same directory
		claimReq("pvc-1", "ns", "c", "x/${pv.name}", nil),                          // another directory
	} {
		if _, err := d.CreateVolume(ctx, r); code(err) != codes.AlreadyExists {
			t.Errorf("create pvc-1 again with %v: %v, want AlreadyExists", r.Parameters, err)
		}
	}
	mustCreate(t, d, claimReq("pvc-1", "ns", "c", byName, nil)) // the same call again is fine
}

// Two nested volumes created at the same time: never both.
func TestConcurrentNestedCreates(t *testing.T) {
	for i := 0; i < 50; i++ {
		d, _ := newShareDriver(t)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, r := range []*csi.CreateVolumeRequest{
			claimReq("pvc-outer", "mallory", "a", byName, nil),
			claimReq("pvc-inner", "a", "x", byNamespace, nil),
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = d.CreateVolume(context.Background(), r)
			}()
		}
		wg.Wait()
		if errs[0] == nil && errs[1] == nil {
			t.Fatalf("round %d: both the outer and the nested volume were created", i)
		}
	}
}

// Property: whatever volumes are made, with whatever templates, deleted and
// recycled in whatever order, every other volume's files stay intact.
func TestRandomVolumesKeepEachOthersFiles(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		checkRandomVolumes(t, seed, 60)
	}
}

func FuzzVolumesKeepEachOthersFiles(f *testing.F) {
	f.Add(int64(7), uint8(40))
	f.Fuzz(func(t *testing.T, seed int64, steps uint8) { checkRandomVolumes(t, seed, int(steps)) })
}

func checkRandomVolumes(t *testing.T, seed int64, steps int) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	rng := rand.New(rand.NewSource(seed))
	templates := []string{byName, byNamespace, "${pvc.namespace}", "shared/${pvc.name}", "${pvc.name}/${pvc.namespace}"}
	names := []string{"a", "b", "team-a", "shared", "x"}
	onDelete := []string{"delete", "retain", "archive"}
	type vol struct{ id, dir, sum string }
	live := map[string]*vol{} // by PV name
	sumOf := func(dir string) string {
		h := sha256.New()
		_ = filepath.Walk(filepath.Join(base, dir), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				fmt.Fprintf(h, "%s %x\n", p, sha256.Sum256(b))
			}
			return nil
		})
		return hex.EncodeToString(h.Sum(nil))
	}
	for step := 0; step < steps; step++ {
		pv := fmt.Sprintf("pvc-%d", rng.Intn(12))
		switch v := live[pv]; {
		case v == nil: // create
			r := claimReq(pv, names[rng.Intn(len(names))], names[rng.Intn(len(names))], templates[rng.Intn(len(templates))],
				map[string]string{"onDelete": onDelete[rng.Intn(3)], "adoptExisting": fmt.Sprint(rng.Intn(2) == 0)})
			resp, err := d.CreateVolume(ctx, r)
			if err != nil {
				continue
			}
			id := resp.GetVolume().GetVolumeId()
			dir := strings.Split(id, "#")[3]
			writeFile(t, filepath.Join(base, dir, pv+"-"+fmt.Sprint(step)), fmt.Sprint(rng.Int()))
			live[pv] = &vol{id: id, dir: dir}
		case rng.Intn(2) == 0: // delete
			if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.id}); err != nil {
				t.Fatalf("seed %d step %d: delete %s: %v", seed, step, v.id, err)
			}
			delete(live, pv)
		default: // recycle
			if err := d.ScrubVolume(ctx, v.id, pv); err != nil {
				t.Fatalf("seed %d step %d: scrub %s: %v", seed, step, v.id, err)
			}
		}
		// Every volume still live holds exactly what it held.
		for name, v := range live {
			if v.sum == "" || name == pv {
				v.sum = sumOf(v.dir)
				continue
			}
			if got := sumOf(v.dir); got != v.sum {
				t.Fatalf("seed %d step %d: volume %s (%s) changed by an operation on %s", seed, step, name, v.dir, pv)
			}
		}
	}
}
