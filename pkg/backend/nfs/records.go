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

// A record costs one LOOKUP and one READ to read, one CREATE and one WRITE
// to write where it is new, one REMOVE to remove: the records directory's
// handle is cached on the connection (recordsdir.go).

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
				if attr.Type != gonfs.NF3Reg {
					return fmt.Errorf("%q is not a regular file", rel)
				}
				if attr.Size() > maxRecord {
					return fmt.Errorf("%q is %d bytes, more than the %d a record may hold", rel, attr.Size(), maxRecord)
				}
				data, err = p.readSmall(fh, maxRecord)
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
	if err == nil && len(data) == 0 {
		// A record is never empty (backend.CheckRecord): this is one whose
		// CREATE landed and whose WRITE did not (the writer crashed in
		// between, before it made any directory). It was never written;
		// the next WriteRecord replaces it.
		err = fmt.Errorf("%q is empty (an unfinished write): %w", rel, backend.ErrNotFound)
	}
	if err != nil {
		return nil, explain(s.ep.loc, "read", rel, err)
	}
	return data, nil
}

// WriteRecord creates a new record in one exclusive CREATE and one stable
// WRITE. An existing record is replaced through a temporary name and a
// RENAME, so that a reader sees the old or the new record, never half.
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
				err := createWith(p, dfh, name, data)
				if !hasStatus(err, gonfs.NFS3ErrExist) {
					return err
				}
				tmp := "." + name + ".tmp-" + randomSuffix()
				if err := createWith(p, dfh, tmp, data); err != nil {
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

// createWith makes name in dir, which must not exist, holding data on stable
// storage. A name it made but could not fill is removed again, unless the
// connection broke (the retry replaces it; a reader takes an empty record
// for a missing one).
func createWith(p procs, dir []byte, name string, data []byte) error {
	fh, err := p.createGuarded(dir, name, 0o600)
	if err != nil {
		return err
	}
	if err := p.writeSync(fh, data); err != nil {
		if !isTransport(err) {
			_ = p.remove(dir, name)
		}
		return err
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
