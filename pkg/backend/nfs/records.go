package nfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"

	gonfs "github.com/willscott/go-nfs-client/nfs"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// recordDir holds Stowage's own records at the root of the share.
const recordDir = ".stowage"

// maxRecord bounds what is read (backend.MaxRecordBytes).
const maxRecord = backend.MaxRecordBytes

// A record is a symbolic link in .stowage whose target is the record's text,
// as in the local store: one SYMLINK makes it whole (a crash leaves it
// complete or absent, never empty or half written), one LOOKUP and one
// READLINK read it, one REMOVE removes it, and the handle of .stowage is
// cached on the connection (recordsdir.go). Nothing ever follows these links:
// the server only stores the text. Records that earlier versions wrote as
// regular files are still read, and replaced by a link when next written.
// On the server, `readlink .stowage/vol-….json` shows a record.

func (s *store) ReadRecord(ctx context.Context, name string) ([]byte, error) {
	if err := backend.CheckRecordName(name); err != nil {
		return nil, err
	}
	rel := path.Join(recordDir, name)
	var data []byte
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			return c.withRecordsDir(p, false, func(dfh []byte) error {
				attr, fh, err := p.lookup(dfh, name)
				if err != nil {
					return err
				}
				if attr.Size() > maxRecord {
					return fmt.Errorf("%q is %d bytes, more than the %d a record may hold", rel, attr.Size(), maxRecord)
				}
				switch attr.Type {
				case gonfs.NF3Lnk:
					var target string
					target, err = p.readlink(fh)
					data = []byte(target)
				case gonfs.NF3Reg:
					data, err = p.readSmall(fh, maxRecord)
				default:
					return fmt.Errorf("%q is neither a symbolic link nor a regular file", rel)
				}
				if err == nil && len(data) > maxRecord {
					err = fmt.Errorf("%q grew beyond the %d bytes a record may hold", rel, maxRecord)
				}
				return err
			})
		})
	})
	if hasStatus(err, gonfs.NFS3ErrNotDir) {
		err = fmt.Errorf("a parent of it is not a directory: %w", backend.ErrNotFound)
	}
	if err != nil {
		return nil, explain(s.ep.loc, "read", rel, err)
	}
	return data, nil
}

// WriteRecord makes a new record with one SYMLINK. An existing record is
// replaced by a link made under a temporary name and renamed over it, so
// that a reader sees the old or the new record, never neither.
func (s *store) WriteRecord(ctx context.Context, name string, data []byte) error {
	if err := backend.CheckRecordName(name); err != nil {
		return err
	}
	if err := backend.CheckRecord(name, data); err != nil {
		return err
	}
	rel := path.Join(recordDir, name)
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			return c.withRecordsDir(p, true, func(dfh []byte) error {
				err := p.symlinkRecord(dfh, name, string(data))
				if !hasStatus(err, gonfs.NFS3ErrExist) {
					return err
				}
				tmp := "." + name + ".tmp-" + randomSuffix()
				if err := p.symlinkRecord(dfh, tmp, string(data)); err != nil {
					return err
				}
				if err := p.rename(dfh, tmp, dfh, name); err != nil {
					_ = p.remove(dfh, tmp)
					return err
				}
				return nil
			})
		})
	})
	if err != nil {
		return explain(s.ep.loc, "write", rel, err)
	}
	return nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RemoveRecord removes a record; a missing record is not an error.
func (s *store) RemoveRecord(ctx context.Context, name string) error {
	if err := backend.CheckRecordName(name); err != nil {
		return err
	}
	rel := path.Join(recordDir, name)
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			err := c.withRecordsDir(p, false, func(dfh []byte) error { return p.remove(dfh, name) })
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
