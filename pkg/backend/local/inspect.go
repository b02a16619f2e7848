package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Empty opens dir without following a symlink and reads at most one name.
func (s *Store) Empty(_ context.Context, dir string) (exists, empty bool, err error) {
	f, err := s.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, false, nil
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return true, false, fmt.Errorf("%s under %s exists and is not a directory; remove it or choose another directory", dir, s.base)
	case err != nil:
		return false, false, fmt.Errorf("open %s under %s: %w", dir, s.base, wrap(err))
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && err != io.EOF {
		return true, false, fmt.Errorf("list %s under %s: %w", dir, s.base, err)
	}
	return true, len(names) == 0, nil
}

// ListRecords reads the names in .stowage.
func (s *Store) ListRecords(_ context.Context) ([]string, error) {
	f, err := s.root.Open(recordsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s under %s: %w", recordsDir, s.base, wrap(err))
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s under %s: %w", recordsDir, s.base, err)
	}
	return names, nil
}
