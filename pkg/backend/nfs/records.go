package nfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"

	gonfs "github.com/willscott/go-nfs-client/nfs"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// recordDir holds Stowage's own records at the root of the share.
const recordDir = ".stowage"

// maxRecord bounds what is read (backend.MaxRecordBytes).
const maxRecord = backend.MaxRecordBytes

func (s *store) ReadRecord(ctx context.Context, name string) ([]byte, error) {
	if err := backend.CheckRecordName(name); err != nil {
		return nil, err
	}
	rel := path.Join(recordDir, name)
	var data []byte
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			attr, _, err := walk(p, c.root, rel)
			if hasStatus(err, gonfs.NFS3ErrNotDir) {
				return fmt.Errorf("a parent of it is not a directory: %w", backend.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if attr.Type != gonfs.NF3Reg {
				return fmt.Errorf("%q is not a regular file", rel)
			}
			if attr.Size() > maxRecord {
				return fmt.Errorf("%q is %d bytes, more than the %d a record may hold", rel, attr.Size(), maxRecord)
			}
			data, err = readAll(p.t, rel, attr.Size())
			return fromLibrary(err)
		})
	})
	if err != nil {
		return nil, explain(s.ep.loc, "read", rel, err)
	}
	return data, nil
}

func readAll(t *gonfs.Target, rel string, size int64) ([]byte, error) {
	f, err := t.Open(rel)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, size)
	chunk := make([]byte, 64<<10)
	for len(buf) <= maxRecord {
		n, err := f.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("read %q: the server returned no data and no end of file", rel)
		}
	}
	return nil, fmt.Errorf("%q grew beyond the %d bytes a record may hold", rel, maxRecord)
}

// WriteFile writes the record to a temporary name beside it and renames it
// into place, so that a reader sees the old or the new record, never half.
func (s *store) WriteRecord(ctx context.Context, name string, data []byte) error {
	if err := backend.CheckRecordName(name); err != nil {
		return err
	}
	if err := backend.CheckRecord(name, data); err != nil {
		return err
	}
	rel := path.Join(recordDir, name)
	dir, base := split(rel)
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			dfh, err := mkdirAll(p, c.root, dir, 0o700)
			if err != nil {
				return err
			}
			tmp := "." + base + ".tmp-" + randomSuffix()
			if err := writeNew(p.t, path.Join(dir, tmp), data); err != nil {
				_ = p.remove(dfh, tmp)
				return fromLibrary(err)
			}
			if err := p.rename(dfh, tmp, dfh, base); err != nil {
				_ = p.remove(dfh, tmp)
				return err
			}
			return nil
		})
	})
	if err != nil {
		return explain(s.ep.loc, "write", rel, err)
	}
	return nil
}

// writeNew creates rel (which must not exist) with data, committed to stable
// storage before it returns.
func writeNew(t *gonfs.Target, rel string, data []byte) error {
	f, err := t.OpenFile(rel, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Close()
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RemoveFile removes a record; a missing record is not an error.
func (s *store) RemoveRecord(ctx context.Context, name string) error {
	if err := backend.CheckRecordName(name); err != nil {
		return err
	}
	rel := path.Join(recordDir, name)
	dir, base := split(rel)
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			_, dfh, err := walk(p, c.root, dir)
			if err == nil {
				err = p.remove(dfh, base)
			}
			if hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) {
				return nil
			}
			return err
		})
	})
	if err != nil {
		return explain(s.ep.loc, "remove", rel, err)
	}
	return nil
}
