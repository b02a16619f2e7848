package nfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/storetest"
)

// TestRecords runs the contract every Store keeps on the real server, and
// checks what is particular to NFS: the bytes on the server side, no
// temporary files left, a private .stowage.
func TestRecords(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	prefix := srv.base(t) // reused only as a unique name
	storetest.Records(t, ctx, st, prefix)

	name := prefix + ".json"
	t.Cleanup(func() { _ = st.RemoveRecord(ctx, name) })
	data := []byte(`{"name":"pvc-1"}`)
	if err := st.WriteRecord(ctx, name, data); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(srv.local(filepath.Join(recordDir, name))); err != nil || !bytes.Equal(b, data) {
		t.Errorf("server side %s holds %q (%v), want %q", name, b, err, data)
	}
	entries, err := os.ReadDir(srv.local(recordDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), prefix) && strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left in .stowage: %s", e.Name())
		}
	}
	if fi, err := os.Stat(srv.local(recordDir)); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf(".stowage should be private to the controller: %v, %v", fi.Mode(), err)
	}
}

func TestRecordErrors(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	name := srv.base(t)
	if _, err := st.ReadRecord(ctx, name+"-never-written"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("ReadFile of a missing record = %v, want ErrNotFound", err)
	}
	// A file planted in .stowage larger than any record is refused, not read.
	huge := srv.local(filepath.Join(recordDir, name+"-huge"))
	if err := os.WriteFile(huge, bytes.Repeat([]byte("x"), maxRecord+1), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(huge) })
	if _, err := st.ReadRecord(ctx, name+"-huge"); err == nil || errors.Is(err, backend.ErrNotFound) {
		t.Errorf("ReadRecord of a %d-byte file = %v, want a size error", maxRecord+1, err)
	}
	// A directory where a record should be is reported, not read.
	if err := os.MkdirAll(srv.local(filepath.Join(recordDir, name+"-dir")), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(srv.local(filepath.Join(recordDir, name+"-dir"))) })
	if _, err := st.ReadRecord(ctx, name+"-dir"); err == nil || errors.Is(err, backend.ErrNotFound) {
		t.Errorf("ReadFile of a directory = %v, want a not-a-regular-file error", err)
	}
}
