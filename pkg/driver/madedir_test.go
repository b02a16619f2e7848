package driver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
)

// madeStore is a local store that says whether its Mkdir made a directory
// (like the NFS store), and runs afterCheck, once, when CreateVolume has
// found that directory checkDir is not there yet (its last look before it
// writes its record): the moment a racing create can slip in.
type madeStore struct {
	backend.Store
	base       string
	checkDir   string
	afterCheck func()
}

func (m *madeStore) MkdirMade(ctx context.Context, dir string, perm os.FileMode) (bool, error) {
	_, err := os.Lstat(filepath.Join(m.base, dir))
	existed := err == nil
	return !existed, m.Mkdir(ctx, dir, perm)
}

func (m *madeStore) Empty(ctx context.Context, dir string) (bool, bool, error) {
	exists, empty, err := m.Store.Empty(ctx, dir)
	if f := m.afterCheck; f != nil && dir == m.checkDir {
		m.afterCheck = nil
		f()
	}
	return exists, empty, err
}

func newMadeDriver(t *testing.T) (*Driver, *madeStore) {
	t.Helper()
	base := t.TempDir()
	st, err := local.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &madeStore{Store: st, base: base}
	d, err := New(Options{Name: "csi.stowage.io", Backends: nfsVia(oneShare{m}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return d, m
}

// A volume whose directory its own mkdir made skips listing it again; a
// volume made inside it at the same time still cannot stay there: it made
// its directory later, so its own check finds the outer record and backs off.
func TestMadeDirInnerRaceBacksOff(t *testing.T) {
	d, m := newMadeDriver(t)
	ctx := context.Background()
	outer := claimReq("pvc-outer", "team-a", "x", "${pvc.namespace}", nil) // dir team-a
	inner := claimReq("pvc-inner", "team-a", "data", byNamespace, nil)     // dir team-a/data
	// The inner create has passed its first checks (no record around it
	// yet); the outer one runs whole before the inner writes its record.
	var outerErr error
	m.checkDir, m.afterCheck = "team-a/data", func() { _, outerErr = d.CreateVolume(ctx, outer) }
	_, innerErr := d.CreateVolume(ctx, inner)
	if outerErr != nil {
		t.Fatalf("outer create: %v, want success (its mkdir made team-a)", outerErr)
	}
	if code(innerErr) != codes.FailedPrecondition || !strings.Contains(innerErr.Error(), "pvc-outer") {
		t.Fatalf("inner create raced inside pvc-outer: %v, want FailedPrecondition naming pvc-outer", innerErr)
	}
	if _, err := m.ReadRecord(ctx, recordName("team-a/data")); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the inner volume's record is still there (%v); a volume never stays inside another", err)
	}
}

// When the directory was there at mkdir (made meanwhile by a racing create
// of a volume inside it), it is listed again, and the outer create backs off.
func TestMadeDirFoundThereIsListed(t *testing.T) {
	d, m := newMadeDriver(t)
	ctx := context.Background()
	outer := claimReq("pvc-outer", "team-a", "x", "${pvc.namespace}", nil)
	inner := claimReq("pvc-inner", "team-a", "data", byNamespace, nil)
	// The outer create has found no directory; the inner one runs whole
	// before the outer writes its record, and makes team-a on its way.
	var innerErr error
	m.checkDir, m.afterCheck = "team-a", func() { _, innerErr = d.CreateVolume(ctx, inner) }
	_, outerErr := d.CreateVolume(ctx, outer)
	if innerErr != nil {
		t.Fatalf("inner create: %v, want success (no record around it then)", innerErr)
	}
	if code(outerErr) != codes.FailedPrecondition {
		t.Fatalf("outer create around pvc-inner: %v, want FailedPrecondition", outerErr)
	}
	if _, err := m.ReadRecord(ctx, recordName("team-a")); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("the outer volume's record is still there (%v); a volume never holds another", err)
	}
}
