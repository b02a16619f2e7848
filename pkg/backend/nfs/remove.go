package nfs

import (
	"context"
	"fmt"
	"strings"

	gonfs "github.com/willscott/go-nfs-client/nfs"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Removal works on file handles from the directory the caller named
// downwards: each directory is listed by its own handle and its entries are
// removed by name inside it, so a symlink anywhere in the tree (to "/", to a
// sibling volume) is unlinked like a file and never entered.

// rmdirAttempts bounds how often a directory that refills while it is being
// emptied (a pod still writing) is emptied again before giving up.
const rmdirAttempts = 3

func (s *store) RemoveAll(ctx context.Context, dir string) error {
	if err := volumeid.ValidateDir(dir); err != nil {
		return err
	}
	err := s.run(ctx, func(c *conn) error { return removeAll(ctx, c, dir) })
	if err != nil {
		return explain(s.ep.loc, "remove", dir, err)
	}
	return nil
}

func removeAll(ctx context.Context, c *conn, dir string) error {
	parent, name := split(dir)
	var pfh []byte
	err := c.do(ctx, func(p procs) error {
		var err error
		_, pfh, err = walk(p, c.root, parent)
		return err
	})
	if hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) {
		return nil // no parent, so no dir
	}
	if err != nil {
		return err
	}
	return removeEntry(ctx, c, pfh, dir, name, nil)
}

func (s *store) Scrub(ctx context.Context, dir string) error {
	if err := volumeid.ValidateDir(dir); err != nil {
		return err
	}
	err := s.run(ctx, func(c *conn) error {
		var attr *gonfs.Fattr
		var fh []byte
		err := c.do(ctx, func(p procs) error {
			var err error
			attr, fh, err = walk(p, c.root, dir)
			return err
		})
		if hasStatus(err, gonfs.NFS3ErrNotDir) {
			return fmt.Errorf("a parent of it is not a directory: %w", backend.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !attr.IsDir() {
			return &notDirError{rel: dir, kind: attr.Type}
		}
		return emptyDir(ctx, c, fh, dir)
	})
	if err != nil {
		return explain(s.ep.loc, "scrub", dir, err)
	}
	return nil
}

// removeEntry removes name from directory pfh: a directory with all its
// contents, anything else (file, symlink, device) as itself. e, if not nil,
// is what a listing said about name. A missing name is not an error.
func removeEntry(ctx context.Context, c *conn, pfh []byte, rel, name string, e *gonfs.EntryPlus) error {
	if e == nil || !e.Attr.IsSet || !e.Handle.IsSet {
		// Try the cheap case first: an empty directory (the common
		// delete of a fresh volume) or a non-directory.
		err := c.do(ctx, func(p procs) error { return p.rmdir(pfh, name) })
		switch {
		case err == nil, hasStatus(err, gonfs.NFS3ErrNoEnt):
			return nil
		case hasStatus(err, gonfs.NFS3ErrNotDir):
			return unlink(ctx, c, pfh, name)
		case !hasStatus(err, gonfs.NFS3ErrNotEmpty, gonfs.NFS3ErrExist):
			return err
		}
		var attr *gonfs.Fattr
		var fh []byte
		err = c.do(ctx, func(p procs) error {
			var err error
			attr, fh, err = p.lookup(pfh, name)
			return err
		})
		if hasStatus(err, gonfs.NFS3ErrNoEnt) {
			return nil
		}
		if err != nil {
			return err
		}
		e = &gonfs.EntryPlus{FileName: name}
		e.Attr.IsSet, e.Attr.Attr = true, *attr
		e.Handle.IsSet, e.Handle.FH = true, fh
	}
	if !e.Attr.Attr.IsDir() {
		return unlink(ctx, c, pfh, name)
	}
	for attempt := 1; ; attempt++ {
		if err := emptyDir(ctx, c, e.Handle.FH, rel); err != nil {
			return err
		}
		err := c.do(ctx, func(p procs) error { return p.rmdir(pfh, name) })
		switch {
		case err == nil, hasStatus(err, gonfs.NFS3ErrNoEnt):
			return nil
		case hasStatus(err, gonfs.NFS3ErrNotDir):
			// Swapped for a non-directory since it was listed.
			return unlink(ctx, c, pfh, name)
		case hasStatus(err, gonfs.NFS3ErrNotEmpty, gonfs.NFS3ErrExist) && attempt < rmdirAttempts:
			continue
		}
		return fmt.Errorf("rmdir %q: %w", rel, err)
	}
}

func unlink(ctx context.Context, c *conn, pfh []byte, name string) error {
	err := c.do(ctx, func(p procs) error { return p.remove(pfh, name) })
	if hasStatus(err, gonfs.NFS3ErrNoEnt) {
		return nil
	}
	return err
}

// emptyDir removes everything inside the directory fh (rel names it in
// messages). It lists a batch, removes it, and lists again from the start:
// a listing cookie may not survive the removals, and this keeps memory
// bounded by one batch however big the directory.
func emptyDir(ctx context.Context, c *conn, fh []byte, rel string) error {
	var cookie, verf uint64
	var previous string // names of the last batch removed
	same := 0           // how often in a row a removed batch came back unchanged
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var entries []*gonfs.EntryPlus
		var next, nextVerf uint64
		var eof bool
		err := c.do(ctx, func(p procs) error {
			var err error
			entries, next, nextVerf, eof, err = p.readdirBatch(fh, cookie, verf)
			return err
		})
		if hasStatus(err, gonfs.NFS3ErrStale, gonfs.NFS3ErrNoEnt) {
			return nil // removed by someone else meanwhile
		}
		if err != nil {
			return fmt.Errorf("list %q: %w", rel, err)
		}
		removed := 0
		var names strings.Builder
		for _, e := range entries {
			if e.FileName == "." || e.FileName == ".." {
				continue
			}
			if err := removeEntry(ctx, c, fh, rel+"/"+e.FileName, e.FileName, e); err != nil {
				return err
			}
			removed++
			names.WriteString(e.FileName + "/")
		}
		switch {
		case removed > 0:
			// Entries that were "removed" (or already gone) but keep being
			// listed mean the server's listing is stale; do not spin on it.
			if names.String() == previous {
				if same++; same >= rmdirAttempts {
					return fmt.Errorf("list %q: the server keeps listing entries that are gone", rel)
				}
			} else {
				same = 0
			}
			previous = names.String()
			cookie, verf = 0, 0
		case eof:
			return nil
		default:
			cookie, verf = next, nextVerf
		}
	}
}
