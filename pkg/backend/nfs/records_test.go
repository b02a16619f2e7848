package nfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
)

func TestRecords(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	// Records live in the share's one .stowage directory, so each test
	// run uses its own names inside it.
	prefix := srv.base(t) // reused only as a unique name
	t.Cleanup(func() { os.RemoveAll(srv.local(filepath.Join(recordDir, prefix))) })
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // several WRITE calls

	tests := []struct {
		name string
		data []byte
	}{
		{prefix + ".json", []byte(`{"name":"pvc-1"}`)},
		{prefix + "/nested/vol.json", []byte("nested")},
		{prefix + "-empty", nil},
		{prefix + "-big", big},
	}
	for _, tc := range tests {
		local := srv.local(filepath.Join(recordDir, tc.name))
		t.Cleanup(func() { os.Remove(local) })

		if err := st.WriteRecord(ctx, tc.name, tc.data); err != nil {
			t.Fatalf("WriteFile(%s): %v", tc.name, err)
		}
		if b, err := os.ReadFile(local); err != nil || !bytes.Equal(b, tc.data) {
			t.Errorf("server side %s holds %d bytes (%v), want %d", tc.name, len(b), err, len(tc.data))
		}
		got, err := st.ReadRecord(ctx, tc.name)
		if err != nil || !bytes.Equal(got, tc.data) {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want %d bytes", tc.name, len(got), err, len(tc.data))
		}
		// Replace: a shorter record must not keep the tail of the longer one.
		if err := st.WriteRecord(ctx, tc.name, []byte("v2")); err != nil {
			t.Fatalf("rewrite %s: %v", tc.name, err)
		}
		if got, err := st.ReadRecord(ctx, tc.name); err != nil || string(got) != "v2" {
			t.Errorf("after rewrite ReadFile(%s) = %q, %v; want v2", tc.name, got, err)
		}
		if err := st.RemoveRecord(ctx, tc.name); err != nil {
			t.Errorf("RemoveFile(%s): %v", tc.name, err)
		}
		if _, err := os.Stat(local); !os.IsNotExist(err) {
			t.Errorf("server side %s still there after RemoveFile: %v", tc.name, err)
		}
		if _, err := st.ReadRecord(ctx, tc.name); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("ReadFile of a removed record = %v, want ErrNotFound", err)
		}
		if err := st.RemoveRecord(ctx, tc.name); err != nil {
			t.Errorf("second RemoveFile(%s) = %v, want nil", tc.name, err)
		}
	}

	// No temporary files are left behind.
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
	if _, err := st.ReadRecord(ctx, name+"-missing-dir/x"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("ReadFile in a missing directory = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "/abs", "../escape", "a/../../escape", "a//b", "."} {
		if err := st.WriteRecord(ctx, bad, []byte("x")); err == nil {
			t.Errorf("WriteFile(%q) = nil, want a validation error", bad)
		}
		if _, err := st.ReadRecord(ctx, bad); err == nil {
			t.Errorf("ReadFile(%q) = nil error, want a validation error", bad)
		}
	}
	if err := st.WriteRecord(ctx, name, make([]byte, maxRecord+1)); err == nil {
		t.Errorf("WriteFile of %d bytes = nil, want a size error", maxRecord+1)
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
