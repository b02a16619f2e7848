package nfs

import (
	"context"

	gonfs "github.com/willscott/go-nfs-client/nfs"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Empty looks dir up without following a symlink and reads its first batch
// of names: anything besides "." and ".." means it is not empty.
func (s *store) Empty(ctx context.Context, dir string) (exists, empty bool, err error) {
	if err := volumeid.ValidateStoreDir(dir); err != nil {
		return false, false, err
	}
	err = s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			attr, fh, err := walk(p, c.root, dir)
			if err != nil {
				return err
			}
			exists = true
			if !attr.IsDir() {
				return &notDirError{rel: dir, kind: attr.Type}
			}
			empty = true
			return eachName(p, fh, func(string) bool {
				empty = false
				return false
			})
		})
	})
	switch {
	case err == nil:
		return exists, empty, nil
	case hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) && !exists:
		return false, false, nil
	}
	return exists, false, explain(s.ep.loc, "list", dir, err)
}

// ListRecords names the records in .stowage, batch by batch.
func (s *store) ListRecords(ctx context.Context) ([]string, error) {
	var names []string
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			return c.withRecordsDir(p, false, func(dir []byte) error {
				names = names[:0]
				return eachName(p, dir, func(name string) bool {
					names = append(names, name)
					return true
				})
			})
		})
	})
	if hasStatus(err, gonfs.NFS3ErrNoEnt) {
		return nil, nil
	}
	if err != nil {
		return nil, explain(s.ep.loc, "list", recordDir, err)
	}
	return names, nil
}

// eachName calls fn with each name in directory fh but "." and "..", batch
// by batch, until fn returns false or the listing ends.
func eachName(p procs, fh []byte, fn func(name string) bool) error {
	var cookie, verf uint64
	for {
		entries, next, nextVerf, eof, err := p.readdirBatch(fh, cookie, verf)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.FileName != "." && e.FileName != ".." && !fn(e.FileName) {
				return nil
			}
		}
		if eof {
			return nil
		}
		cookie, verf = next, nextVerf
	}
}
