package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
)

// A static handle (no volume name) on the directory of a volume Stowage
// made is refused: it would act with the record's onDelete for a PV that is
// not the volume's.
func TestOwnershipStaticHandleOnRecordedVolume(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	mustCreate(t, d, claimReq("pvc-a1", "team-a", "db", byName, nil)) // onDelete=delete
	secret := filepath.Join(base, "db", "rows")
	writeFile(t, secret, "team-a's")

	// An admin's static PV (or a PV creator's) with a handle without name and
	// onDelete, on the same directory, reclaim policy Delete. The provisioner's
	// guard lets it through once pvc-a1's PV is Released (Retain) or gone.
	_, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "nfs#10.0.0.5#/export#db"})
	if code(err) != codes.FailedPrecondition {
		t.Errorf("static handle on volume pvc-a1's directory: DeleteVolume = %v, want FailedPrecondition", err)
	}
	wantFile(t, secret, "team-a's")
}

// The same on a case-insensitive server, where "DB" and "db" are one
// directory but records are keyed by the exact string: the check for
// volumes inside folds case.
func TestOwnershipStaticHandleCaseInsensitive(t *testing.T) {
	base := t.TempDir()
	st, err := local.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d, err := New(Options{Name: "csi.stowage.io", Backends: nfsVia(oneShare{foldCase{st}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustCreate(t, d, claimReq("pvc-a1", "team-a", "db", byName, nil))
	secret := filepath.Join(base, "db", "rows")
	writeFile(t, secret, "team-a's")
	_, err = d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "nfs#10.0.0.5#/export#DB"})
	if code(err) != codes.FailedPrecondition {
		t.Errorf("static handle DB on a case-insensitive share holding volume db: DeleteVolume = %v, want FailedPrecondition", err)
	}
	wantFile(t, secret, "team-a's")
}

// foldCase models a case-insensitive server: every directory name is
// looked up without regard to case (records are the driver's own names).
type foldCase struct{ backend.Store }

func (f foldCase) Mkdir(ctx context.Context, dir string, m os.FileMode) error {
	return f.Store.Mkdir(ctx, strings.ToLower(dir), m)
}
func (f foldCase) Exists(ctx context.Context, dir string) (bool, error) {
	return f.Store.Exists(ctx, strings.ToLower(dir))
}
func (f foldCase) Empty(ctx context.Context, dir string) (bool, bool, error) {
	return f.Store.Empty(ctx, strings.ToLower(dir))
}
func (f foldCase) RemoveAll(ctx context.Context, dir string) error {
	return f.Store.RemoveAll(ctx, strings.ToLower(dir))
}
func (f foldCase) Scrub(ctx context.Context, dir string) error {
	return f.Store.Scrub(ctx, strings.ToLower(dir))
}
func (f foldCase) Rename(ctx context.Context, dir, to string) error {
	return f.Store.Rename(ctx, strings.ToLower(dir), strings.ToLower(to))
}

// Two volumes with other names but one directory (a ${pvc.name} class,
// claim "data" in two namespaces) created at the same time: the lock is
// per directory, so the second finds the first's record.
func TestOwnershipConcurrentSameDirectory(t *testing.T) {
	base := t.TempDir()
	st, err := local.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bs := &barrierStore{Store: st, n: 2}
	d, err := New(Options{Name: "csi.stowage.io", Backends: nfsVia(oneShare{bs}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 2)
	errs := make([]error, 2)
	for i, r := range []*csi.CreateVolumeRequest{
		claimReq("pvc-a", "team-a", "data", byName, nil),
		claimReq("pvc-m", "mallory", "data", byName, nil),
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := d.CreateVolume(context.Background(), r)
			errs[i] = err
			if err == nil {
				ids[i] = resp.GetVolume().GetVolumeId()
			}
		}()
	}
	wg.Wait()
	if errs[0] == nil && errs[1] == nil {
		t.Fatalf("two volumes of two namespaces got one directory:\n  %s\n  %s", ids[0], ids[1])
	}
}

// barrierStore holds every record write until n callers have reached one
// (or a second has passed: a fixed driver lets only one through), so that
// the creates' checks all run before any record is written: the
// interleaving the scheduler produces now and then under load.
type barrierStore struct {
	backend.Store
	once sync.Once
	mu   sync.Mutex
	n    int
	seen int
	all  chan struct{}
}

func (b *barrierStore) WriteRecord(ctx context.Context, name string, data []byte) error {
	b.once.Do(func() { b.all = make(chan struct{}) })
	b.mu.Lock()
	b.seen++
	if b.seen == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(time.Second):
	}
	return b.Store.WriteRecord(ctx, name, data)
}

// onDelete=archive drops the record, so archived data is "no one's":
// a class with adoptExisting in any namespace takes it, where retained data
// is refused to every other namespace (TestRetainedGoesBackOnlyToItsNamespace).
func TestOwnershipArchivedDataAdoptedByOtherNamespace(t *testing.T) {
	d, base := newShareDriver(t)
	ctx := context.Background()
	id := mustCreate(t, d, claimReq("pvc-a1", "team-a", "data", byNamespace, map[string]string{"onDelete": "archive"}))
	writeFile(t, filepath.Join(base, "team-a", "data", "secret"), "team-a's")
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatal(err)
	}
	_, err := d.CreateVolume(ctx, claimReq("pvc-m1", "mallory", "team-a", byName, map[string]string{"adoptExisting": "true"}))
	if err == nil {
		matches, _ := filepath.Glob(filepath.Join(base, "team-a", "archived-*", "secret"))
		t.Fatalf("namespace mallory adopted team-a/, which holds team-a's archived data %v", matches)
	}
}

// two classes on one server whose shares nest (/export and
// /export/team-b). The "holds other volumes" check of an adoption reads
// only the records of its own share, so a claim of the outer class adopts
// the inner class's share root with every volume in it.
func TestOwnershipAdoptionAcrossNestedShares(t *testing.T) {
	base := t.TempDir()
	outer, err := local.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outer.Close() })
	if err := os.Mkdir(filepath.Join(base, "team-b"), 0o755); err != nil {
		t.Fatal(err)
	}
	inner, err := local.Open(filepath.Join(base, "team-b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	d, err := New(Options{Name: "csi.stowage.io", Backends: nfsVia(shares{"/export": outer, "/export/team-b": inner}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := claimReq("pvc-b1", "team-b", "data", byName, nil)
	r.Parameters["share"] = "/export/team-b"
	mustCreate(t, d, r)
	writeFile(t, filepath.Join(base, "team-b", "data", "secret"), "team-b's")

	_, err = d.CreateVolume(ctx, claimReq("pvc-m1", "mallory", "team-b", byName, map[string]string{"adoptExisting": "true"}))
	if err == nil {
		t.Fatal("namespace mallory adopted /export/team-b, the share of another class holding volume pvc-b1")
	}
}

type shares map[string]backend.Store

func (s shares) Get(_ context.Context, _, share string) (backend.Store, error) { return s[share], nil }
