package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

func TestOpenDir(t *testing.T) {
	s, base := openStore(t)
	outside := t.TempDir()
	for _, d := range []string{"static/a/b", "plain"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(base, "static/a/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "static/a"), filepath.Join(base, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir     string
		wantErr string
	}{
		{"plain", ""},
		{"static/a/b", ""},
		{"static/a/link", "not a plain directory"},
		{"linkdir/b", "not a plain directory"}, // a symlink in the middle
		{"file", "not a plain directory"},
		{"static/../plain", "not a clean relative path"},
		{"missing/x", "no such file"},
		{"", "empty"},
	}
	for _, tt := range tests {
		f, err := s.OpenDir(tt.dir)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("OpenDir(%q): %v", tt.dir, err)
				continue
			}
			var got, want unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &got); err != nil {
				t.Fatal(err)
			}
			if err := unix.Lstat(filepath.Join(base, tt.dir), &want); err != nil {
				t.Fatal(err)
			}
			if got.Ino != want.Ino || got.Dev != want.Dev {
				t.Errorf("OpenDir(%q) opened inode %d, want %d", tt.dir, got.Ino, want.Ino)
			}
			f.Close()
			continue
		}
		if err == nil {
			f.Close()
			t.Errorf("OpenDir(%q) succeeded, want an error containing %q", tt.dir, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("OpenDir(%q): %v, want an error containing %q", tt.dir, err, tt.wantErr)
		}
	}
	if _, err := s.OpenDir("missing"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("OpenDir(missing): %v, want backend.ErrNotFound", err)
	}
}

// TestOpenDirMountAfterSwap swaps a component of an open volume directory
// for a symlink to a directory outside the base path, as the owner of an
// enclosing volume could between the check and the mount, and bind-mounts
// from the descriptor: the mount must show the directory that was opened.
func TestOpenDirMountAfterSwap(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for mounts")
	}
	s, base := openStore(t)
	outside, target := t.TempDir(), t.TempDir()
	inner := filepath.Join(base, "outer/inner")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inner, "volume"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenDir("outer/inner")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Rename(inner, filepath.Join(base, "outer/moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, inner); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(target, unix.MNT_DETACH)
	if _, err := os.Stat(filepath.Join(target, "secret")); err == nil {
		t.Fatal("the mount followed the symlink swapped in after OpenDir")
	}
	if _, err := os.Stat(filepath.Join(target, "volume")); err != nil {
		t.Fatalf("the mount does not show the opened directory: %v", err)
	}
}
