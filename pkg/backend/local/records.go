package local

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// Records are kept as symbolic links in .stowage whose target is the
// record itself (a few hundred bytes of JSON; `readlink` shows it). Every
// CreateVolume and DeleteVolume reads or writes one, and a link costs one
// system call to write atomically (symlinkat), one to read (readlinkat) and
// one to remove, where a file took open/write/close/rename and
// open/read/close; through os.Root it was about 30 system calls per
// create+delete, the largest part of their cost (docs/benchmarks.md). The
// calls are made on the open .stowage, and record names are single path
// elements, so nothing is resolved outside it.

// recordsFD returns the open .stowage; with create it makes the directory
// first, else a missing one wraps ErrNotFound.
func (s *Store) recordsFD(create bool) (int, error) {
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	if s.records != nil {
		// A .stowage removed behind our back (no links left) would swallow
		// every record written into it: open the one now at the path.
		var st unix.Stat_t
		if err := unix.Fstat(int(s.records.Fd()), &st); err != nil || st.Nlink == 0 {
			s.records.Close()
			s.records = nil
		}
	}
	if s.records == nil {
		if create {
			if err := s.root.MkdirAll(recordsDir, 0o700); err != nil {
				return -1, fmt.Errorf("mkdir %s under %s: %w", recordsDir, s.base, wrap(err))
			}
		}
		f, err := s.root.Open(recordsDir)
		if err != nil {
			return -1, fmt.Errorf("open %s under %s: %w", recordsDir, s.base, wrap(err))
		}
		s.records = f
	}
	return int(s.records.Fd()), nil
}

func (s *Store) ReadRecord(_ context.Context, name string) ([]byte, error) {
	if err := backend.CheckRecordName(name); err != nil {
		return nil, err
	}
	dir, err := s.recordsFD(false)
	if err != nil {
		return nil, err
	}
	for size := 1024; size <= maxRecord; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return nil, fmt.Errorf("read record %s under %s: %w", name, s.base, wrap(&os.PathError{Op: "readlink", Path: name, Err: err}))
		}
		if n < size {
			return buf[:n], nil
		}
	}
	return nil, fmt.Errorf("read record %s under %s: longer than %d bytes", name, s.base, maxRecord)
}

// maxRecord is one more than the longest record: a link target Linux stores
// is at most PATH_MAX less the NUL, which is backend.MaxRecordBytes.
const maxRecord = backend.MaxRecordBytes + 1

// WriteRecord creates or replaces a record atomically: a new record is one
// symlinkat, a replaced one is a link made aside and renamed over it.
func (s *Store) WriteRecord(_ context.Context, name string, data []byte) error {
	if err := backend.CheckRecord(name, data); err != nil {
		return err
	}
	dir, err := s.recordsFD(true)
	if err != nil {
		return err
	}
	err = unix.Symlinkat(string(data), dir, name)
	if errors.Is(err, unix.EEXIST) {
		tmp := name + ".tmp"
		_ = unix.Unlinkat(dir, tmp, 0) // left by a crash
		if err = unix.Symlinkat(string(data), dir, tmp); err == nil {
			err = unix.Renameat(dir, tmp, dir, name)
		}
	}
	if err != nil {
		return fmt.Errorf("write record %s under %s: %w", name, s.base, wrap(err))
	}
	return nil
}

func (s *Store) RemoveRecord(_ context.Context, name string) error {
	if err := backend.CheckRecordName(name); err != nil {
		return err
	}
	dir, err := s.recordsFD(false)
	if errors.Is(err, backend.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove record %s under %s: %w", name, s.base, err)
	}
	return nil
}
