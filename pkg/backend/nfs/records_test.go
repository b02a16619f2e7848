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
	if b, err := os.Readlink(srv.local(filepath.Join(recordDir, name))); err != nil || b != string(data) {
		t.Errorf("server side %s is a link to %q (%v), want %q", name, b, err, data)
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

// A record that an earlier version wrote as a regular file reads as before,
// and a write replaces it with a link.
func TestRecordLegacyFile(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	name := srv.base(t) + ".json"
	t.Cleanup(func() { _ = st.RemoveRecord(ctx, name) })
	if err := st.WriteRecord(ctx, "warm-"+name, []byte("x")); err != nil { // makes .stowage if missing
		t.Fatal(err)
	}
	_ = st.RemoveRecord(ctx, "warm-"+name)
	old := []byte(`{"name":"pvc-old"}`)
	if err := os.WriteFile(srv.local(filepath.Join(recordDir, name)), old, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ReadRecord(ctx, name); err != nil || !bytes.Equal(got, old) {
		t.Errorf("ReadRecord of a record file = %q, %v; want %q", got, err, old)
	}
	data := []byte(`{"name":"pvc-new"}`)
	if err := st.WriteRecord(ctx, name, data); err != nil {
		t.Fatalf("WriteRecord over a record file: %v", err)
	}
	if got, err := st.ReadRecord(ctx, name); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadRecord after the rewrite = %q, %v; want %q", got, err, data)
	}
	if target, err := os.Readlink(srv.local(filepath.Join(recordDir, name))); err != nil || target != string(data) {
		t.Errorf("after the rewrite the record is %q (%v), want a link to %q", target, err, data)
	}
	if err := st.RemoveRecord(ctx, name); err != nil || srv.exists(filepath.Join(recordDir, name)) {
		t.Errorf("RemoveRecord = %v; the record should be gone", err)
	}
}

// A cached handle of .stowage that the server no longer knows is dropped and
// looked up again; the call succeeds.
func TestRecordsDirStaleHandle(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	name := base + ".json"
	t.Cleanup(func() { _ = st.RemoveRecord(ctx, name) })
	if err := st.WriteRecord(ctx, name, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	// A directory's handle that goes stale: made, looked up, removed.
	gone := base + "/gone"
	if err := st.Mkdir(ctx, gone, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := st.(*store).ep.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stale []byte
	if err := c.do(ctx, func(p procs) error {
		_, fh, err := walk(p, c.root, gone)
		stale = fh
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Through the server, so that it knows the handle is gone (removed
	// behind its back, NFS-Ganesha's cache would still answer for it).
	if err := st.RemoveAll(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"ReadRecord", func() error { _, err := st.ReadRecord(ctx, name); return err }},
		{"WriteRecord", func() error { return st.WriteRecord(ctx, name, []byte("v2")) }},
		{"ListRecords", func() error { _, err := st.ListRecords(ctx); return err }},
		{"RemoveRecord", func() error { return st.RemoveRecord(ctx, name) }},
	} {
		c.records.set(stale)
		if err := step.do(); err != nil {
			t.Errorf("%s with a stale cached handle of .stowage: %v", step.what, err)
		}
		if fh := c.records.get(); bytes.Equal(fh, stale) {
			t.Errorf("%s kept the stale handle in the cache", step.what)
		}
	}
	if srv.exists(filepath.Join(recordDir, name)) {
		t.Errorf("the record is still on the server after RemoveRecord")
	}
}
