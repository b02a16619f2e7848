package nfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gonfs "github.com/willscott/go-nfs-client/nfs"

	"github.com/stowage-csi/stowage/pkg/backend"
)

func TestErrorClassification(t *testing.T) {
	nfsErr := func(code uint32) error { return gonfs.NFS3Error(code) }
	tests := []struct {
		name          string
		err           error
		wantIs        error  // sentinel explain must wrap, or nil
		wantText      string // substring of the explained message
		wantTransport bool   // fromLibrary must mark it as a broken connection
	}{
		{"noent", nfsErr(gonfs.NFS3ErrNoEnt), backend.ErrNotFound, "not found", false},
		{"nospc", nfsErr(gonfs.NFS3ErrNoSpc), backend.ErrNoSpace, "free space", false},
		{"dquot", nfsErr(gonfs.NFS3ErrDQuot), backend.ErrNoSpace, "quota", false},
		{"perm", nfsErr(gonfs.NFS3ErrPerm), nil, "permission denied", false},
		{"acces", nfsErr(gonfs.NFS3ErrAcces), nil, "no_root_squash", false},
		{"rofs", nfsErr(gonfs.NFS3ErrROFS), nil, "read-only", false},
		{"nametoolong", nfsErr(gonfs.NFS3ErrNameTooLong), nil, "shorter", false},
		{"unknown status", nfsErr(12345), nil, "", false},
		{"rpc rejection", errors.New("rpc: PROG_UNAVAIL - server does not recognize the program number"), nil, "PROG_UNAVAIL", false},
		{"mount refusal", &mountError{gonfs.MNT3ErrAcces}, nil, "MNT3ERR_ACCES", false},
		{"disconnect", errors.New("disconnected"), nil, "disconnected", true},
		{"short reply", io.ErrUnexpectedEOF, nil, "unexpected EOF", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			classified := fromLibrary(tc.err)
			if got := isTransport(classified); got != tc.wantTransport {
				t.Errorf("isTransport(fromLibrary(%v)) = %v, want %v", tc.err, got, tc.wantTransport)
			}
			err := explain("srv:/export", "mkdir", "vol", classified)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("explain(%v) = %v, want it to wrap %v", tc.err, err, tc.wantIs)
			}
			for _, s := range []error{backend.ErrNotFound, backend.ErrNoSpace} {
				if s != tc.wantIs && errors.Is(err, s) {
					t.Errorf("explain(%v) = %v wraps %v, which it should not", tc.err, err, s)
				}
			}
			if !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), `mkdir "vol" on srv:/export`) {
				t.Errorf("explain(%v) = %q, want it to name the operation and contain %q", tc.err, err, tc.wantText)
			}
		})
	}
}

// closedPort returns a local TCP port with nothing listening on it.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestOpenErrors(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	tests := []struct {
		name     string
		server   string
		share    string
		opts     Options
		wantText []string
	}{
		{
			name: "nothing listens", server: "127.0.0.1", share: srv.share,
			opts:     Options{NFSPort: closedPort(t)},
			wantText: []string{"cannot reach NFS server 127.0.0.1", "connection refused", "check the StorageClass parameter server"},
		},
		{
			name: "name does not resolve", server: "no-such-host.invalid", share: srv.share,
			wantText: []string{"cannot reach NFS server no-such-host.invalid", "check the StorageClass parameter server"},
		},
		{
			name: "share not exported", server: srv.server, share: "/not-exported",
			wantText: []string{"does not export /not-exported", "check the StorageClass parameter share"},
		},
		{
			name: "invalid share", server: srv.server, share: "relative",
			wantText: []string{"must be an absolute export path"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			st, err := OpenWithOptions(ctx, tc.server, tc.share, tc.opts)
			if err == nil {
				st.Close()
				t.Fatalf("Open succeeded, want an error")
			}
			t.Logf("error: %v", err)
			for _, want := range tc.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("Open took %s to fail", d)
			}
		})
	}
}

func TestPermissionDenied(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	base := srv.base(t) // 0755 root: nobody may write in it
	st, err := OpenWithOptions(ctx, srv.server, srv.share, Options{UID: 65534, GID: 65534})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.Mkdir(ctx, base+"/vol", 0o755)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("Mkdir as nobody = %v, want permission denied", err)
	}
	if srv.exists(base + "/vol") {
		t.Errorf("directory was created despite the error")
	}
}

func TestReadOnlyShare(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	st, err := Open(ctx, srv.server, "/readonly")
	if err != nil {
		t.Skipf("the server has no /readonly export (test/nfs/ganesha.sh makes one): %v", err)
	}
	defer st.Close()
	err = st.Mkdir(ctx, "vol", 0o755)
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Mkdir on a read-only export = %v, want a read-only error", err)
	}
}

func TestNoSpace(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	st, err := Open(ctx, srv.server, "/small")
	if err != nil {
		t.Skipf("the server has no /small export (test/nfs/ganesha.sh makes one when it may mount tmpfs): %v", err)
	}
	defer st.Close()
	total, _, err := st.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the share from the server's side, then write a record over NFS.
	// test/nfs/ganesha.sh keeps /small's directory beside /export's.
	filler := filepath.Join(filepath.Dir(srv.dir), "small", fmt.Sprintf("fill-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.Remove(filler) })
	if f, err := os.Create(filler); err == nil {
		_, _ = f.Write(make([]byte, total))
		f.Close()
	}
	fillErr := st.WriteRecord(ctx, fmt.Sprintf("fill-%d", time.Now().UnixNano()), bytes.Repeat([]byte("x"), backend.MaxRecordBytes))
	t.Logf("error: %v", fillErr)
	if !errors.Is(fillErr, backend.ErrNoSpace) {
		t.Fatalf("filling a %d-byte share: %v, want ErrNoSpace", total, fillErr)
	}
	if _, avail, err := st.Capacity(ctx); err != nil || avail > total/10 {
		t.Errorf("Capacity after filling: available %d of %d (%v)", avail, total, err)
	}
}
