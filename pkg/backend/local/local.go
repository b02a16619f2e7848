// Package local keeps volumes as directories under a base path on the node
// that owns them. Every operation goes through an os.Root or through *at
// system calls on descriptors opened from it without following symlinks, so
// a symlink planted inside a volume can never make Stowage touch anything
// outside the base path.
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

const recordsDir = ".stowage"

// Store is a backend.Store on a local directory.
type Store struct {
	base    string
	root    *os.Root
	rootDir *os.File // the base path open, for the *at system calls in remove.go

	recordsMu sync.Mutex
	records   *os.File // .stowage, opened on first use (records.go)
}

var _ backend.Store = (*Store)(nil)

// Open opens the base path, which must exist and be a directory.
func Open(base string) (*Store, error) {
	fi, err := os.Stat(base)
	if err != nil {
		return nil, fmt.Errorf("local base path %s: %w; create it or set --local-base-path", base, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local base path %s is not a directory", base)
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return nil, fmt.Errorf("open local base path %s: %w", base, err)
	}
	rootDir, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("open local base path %s: %w", base, err)
	}
	return &Store{base: base, root: root, rootDir: rootDir}, nil
}

// Base is the directory the store lives in.
func (s *Store) Base() string { return s.base }

// Check reports whether the base path is still the directory the store
// opened: a base path removed, or replaced by another directory or mount,
// would leave every operation working on a directory nobody sees.
func (s *Store) Check() error {
	var atPath, held unix.Stat_t
	if err := unix.Stat(s.base, &atPath); err != nil {
		return &os.PathError{Op: "stat", Path: s.base, Err: err}
	}
	if err := unix.Fstat(int(s.rootDir.Fd()), &held); err != nil {
		return &os.PathError{Op: "fstat", Path: s.base, Err: err}
	}
	if atPath.Dev != held.Dev || atPath.Ino != held.Ino {
		return fmt.Errorf("%s was replaced after the node plugin opened it (a directory removed and made again, or a disk mounted over it); restart the node plugin so that it opens the new one", s.base)
	}
	return nil
}

// Path is the host path of a volume directory. Callers that hand it to
// mount must check it with Resolve first.
func (s *Store) Path(dir string) string { return path.Join(s.base, dir) }

// Resolve returns the host path of dir after checking that no component of
// it is a symlink, so a bind mount of it stays inside the base path.
func (s *Store) Resolve(dir string) (string, error) {
	p := "."
	for _, part := range splitDir(dir) {
		p = path.Join(p, part)
		fi, err := s.root.Lstat(p)
		if err != nil {
			return "", wrap(err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
			return "", fmt.Errorf("%s is not a plain directory under %s", p, s.base)
		}
	}
	return s.Path(dir), nil
}

func (s *Store) Mkdir(_ context.Context, dir string, perm os.FileMode) error {
	// One mkdirat in the usual case; MkdirAll only for missing parents.
	err := s.root.Mkdir(dir, perm)
	if errors.Is(err, fs.ErrNotExist) {
		err = s.root.MkdirAll(dir, perm)
	}
	if errors.Is(err, fs.ErrExist) {
		// Fine if it is a directory (a retried create); a file or a
		// symlink in its place is not a volume.
		if fi, statErr := s.root.Lstat(dir); statErr == nil && fi.IsDir() {
			err = nil
		} else {
			err = fmt.Errorf("%w (and it is not a directory)", err)
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir %s under %s: %w", dir, s.base, wrap(err))
	}
	// MkdirAll is subject to the umask; the class asked for exactly perm.
	if err := s.root.Chmod(dir, perm); err != nil {
		return fmt.Errorf("chmod %s under %s: %w", dir, s.base, wrap(err))
	}
	return nil
}

func (s *Store) Exists(_ context.Context, dir string) (bool, error) {
	fi, err := s.root.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s under %s: %w", dir, s.base, err)
	}
	return fi.IsDir(), nil
}

func (s *Store) RemoveAll(ctx context.Context, dir string) error {
	if err := s.removeTree(ctx, dir, false); err != nil {
		return fmt.Errorf("remove %s under %s: %w", dir, s.base, wrap(err))
	}
	return nil
}

func (s *Store) Rename(_ context.Context, dir, newDir string) error {
	if parent := path.Dir(newDir); parent != "." {
		if err := s.root.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("mkdir %s under %s: %w", parent, s.base, wrap(err))
		}
	}
	if err := s.root.Rename(dir, newDir); err != nil {
		return fmt.Errorf("rename %s to %s under %s: %w", dir, newDir, s.base, wrap(err))
	}
	return nil
}

// Scrub empties dir; a missing dir wraps backend.ErrNotFound, since a
// volume with nothing behind it must not be offered again.
func (s *Store) Scrub(ctx context.Context, dir string) error {
	if err := s.removeTree(ctx, dir, true); err != nil {
		return fmt.Errorf("scrub %s under %s: %w", dir, s.base, wrap(err))
	}
	return nil
}

func (s *Store) Capacity(_ context.Context) (int64, int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.base, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", s.base, err)
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}

func (s *Store) Close() error {
	s.recordsMu.Lock()
	if s.records != nil {
		s.records.Close()
	}
	s.recordsMu.Unlock()
	s.rootDir.Close()
	return s.root.Close()
}

// wrap maps OS errors to the backend's sentinel errors.
func wrap(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", backend.ErrNotFound, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", backend.ErrNoSpace, err)
	}
	return err
}

func splitDir(dir string) []string {
	var parts []string
	for dir != "." && dir != "/" && dir != "" {
		parts = append([]string{path.Base(dir)}, parts...)
		dir = path.Dir(dir)
	}
	return parts
}
