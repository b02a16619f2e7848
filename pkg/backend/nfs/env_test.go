package nfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// testServer is the real NFS server the tests run against (see
// test/nfs/ganesha.sh): its address, the exported share, and the local
// directory behind the share, through which the tests check what the server
// really did and plant what a pod would (symlinks, files).
type testServer struct {
	server, share, dir string
}

func needServer(tb testing.TB) testServer {
	tb.Helper()
	s := testServer{
		server: os.Getenv("STOWAGE_TEST_NFS_SERVER"),
		share:  os.Getenv("STOWAGE_TEST_NFS_SHARE"),
		dir:    os.Getenv("STOWAGE_TEST_NFS_DIR"),
	}
	if s.server == "" || s.share == "" || s.dir == "" {
		tb.Skip("needs a real NFS server: start one with test/nfs/ganesha.sh start and set " +
			"STOWAGE_TEST_NFS_SERVER=127.0.0.1 STOWAGE_TEST_NFS_SHARE=/export STOWAGE_TEST_NFS_DIR=/tmp/stowage-nfs/export")
	}
	if fi, err := os.Stat(s.dir); err != nil || !fi.IsDir() {
		tb.Fatalf("STOWAGE_TEST_NFS_DIR=%s is not a directory: %v", s.dir, err)
	}
	return s
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// open returns a Store that owns its connection, closed at the end of the test.
func (s testServer) open(tb testing.TB) backend.Store {
	tb.Helper()
	st, err := Open(testCtx(tb), s.server, s.share)
	if err != nil {
		tb.Fatalf("Open(%s, %s): %v", s.server, s.share, err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// base makes a fresh directory for one test under the share, removed
// server-side afterwards, and returns its path relative to the share.
func (s testServer) base(tb testing.TB) string {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "test-" + strings.NewReplacer("/", "-", " ", "-").Replace(tb.Name()) + "-" + hex.EncodeToString(b[:])
	if err := os.Mkdir(s.local(name), 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(s.local(name)) })
	return name
}

// local is rel's path on the server's side.
func (s testServer) local(rel string) string { return filepath.Join(s.dir, rel) }

func (s testServer) mustWrite(tb testing.TB, rel, data string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(s.local(rel)), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(s.local(rel), []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func (s testServer) mustSymlink(tb testing.TB, target, rel string) {
	tb.Helper()
	if err := os.Symlink(target, s.local(rel)); err != nil {
		tb.Fatal(err)
	}
}

func (s testServer) exists(rel string) bool {
	_, err := os.Lstat(s.local(rel))
	return err == nil
}
