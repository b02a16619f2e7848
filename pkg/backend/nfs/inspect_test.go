package nfs

import (
	"os"
	"slices"
	"testing"
)

func TestEmpty(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	base := srv.base(t)
	if err := os.MkdirAll(srv.local(base+"/empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv.mustWrite(t, base+"/full/f", "x")
	srv.mustWrite(t, base+"/file", "x")
	srv.mustSymlink(t, "/", base+"/link")
	for _, tt := range []struct {
		dir                 string
		wantExists, wantEmp bool
		wantErr             bool
	}{
		{base + "/empty", true, true, false},
		{base + "/full", true, false, false},
		{base + "/missing", false, false, false},
		{base + "/missing/below", false, false, false},
		{base + "/file", true, false, true},
		{base + "/link", true, false, true}, // never followed
	} {
		exists, empty, err := st.Empty(ctx, tt.dir)
		if exists != tt.wantExists || empty != tt.wantEmp || (err != nil) != tt.wantErr {
			t.Errorf("Empty(%s) = %v, %v, %v; want %v, %v, error %v", tt.dir, exists, empty, err, tt.wantExists, tt.wantEmp, tt.wantErr)
		}
	}
}

func TestListRecords(t *testing.T) {
	srv := needServer(t)
	st := srv.open(t)
	ctx := testCtx(t)
	// Other tests of this package write records too: only ours must be there.
	for _, n := range []string{"list-a.json", "list-b.json"} {
		if err := st.WriteRecord(ctx, n, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.RemoveRecord(ctx, n) })
	}
	names, err := st.ListRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"list-a.json", "list-b.json"} {
		if !slices.Contains(names, n) {
			t.Errorf("ListFiles = %v, missing %s", names, n)
		}
	}
}
