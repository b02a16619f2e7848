// Package storetest holds the contract every backend.Store keeps, as tests
// that each store's own package runs against a real instance (a temporary
// base path, a real NFS export).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// Records checks the record API: names are one path element, sizes 1 to
// backend.MaxRecordBytes without NUL, replace is whole, a missing record is
// ErrNotFound, remove is idempotent, and List names what was written.
// prefix makes this run's names unique in a shared records directory.
func Records(t *testing.T, ctx context.Context, st backend.Store, prefix string) {
	t.Helper()
	longest := bytes.Repeat([]byte("r"), backend.MaxRecordBytes)
	for _, data := range [][]byte{[]byte(`{"name":"pvc-1"}`), []byte("x"), longest} {
		name := prefix + "-rec"
		if err := st.WriteRecord(ctx, name, data); err != nil {
			t.Fatalf("WriteRecord(%s, %d bytes): %v", name, len(data), err)
		}
		if got, err := st.ReadRecord(ctx, name); err != nil || !bytes.Equal(got, data) {
			t.Errorf("ReadRecord(%s) = %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
		names, err := st.ListRecords(ctx)
		if err != nil || !slices.Contains(names, name) {
			t.Errorf("ListRecords = %v, %v; want it to name %s", names, err, name)
		}
		// Replace: a shorter record keeps nothing of the longer one.
		if err := st.WriteRecord(ctx, name, []byte("v2")); err != nil {
			t.Fatalf("rewrite %s: %v", name, err)
		}
		if got, err := st.ReadRecord(ctx, name); err != nil || string(got) != "v2" {
			t.Errorf("after rewrite ReadRecord(%s) = %q, %v; want v2", name, got, err)
		}
		for range 2 { // the second remove finds nothing, and that is fine
			if err := st.RemoveRecord(ctx, name); err != nil {
				t.Errorf("RemoveRecord(%s): %v", name, err)
			}
		}
		if _, err := st.ReadRecord(ctx, name); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("ReadRecord of a removed record = %v, want ErrNotFound", err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/abs", "../escape", "nul\x00"} {
		if err := st.WriteRecord(ctx, bad, []byte("x")); err == nil {
			t.Errorf("WriteRecord(%q) = nil, want a name error", bad)
		}
		if _, err := st.ReadRecord(ctx, bad); err == nil {
			t.Errorf("ReadRecord(%q) = nil error, want a name error", bad)
		}
	}
	for _, bad := range [][]byte{nil, append(slices.Clone(longest), 'r'), []byte("a\x00b")} {
		if err := st.WriteRecord(ctx, prefix+"-bad", bad); err == nil {
			t.Errorf("WriteRecord of %d bytes (%q...) = nil, want a size or content error", len(bad), trim(bad))
		}
	}
	if _, err := st.ReadRecord(ctx, prefix+"-bad"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("a refused record was stored: %v", err)
	}
}

func trim(b []byte) string {
	s := string(b)
	if len(s) > 8 {
		s = s[:8]
	}
	return strings.ToValidUTF8(s, "?")
}
