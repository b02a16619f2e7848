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
	if err := volumeid.ValidateStoreDir(dir); err != nil {
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
	pfh := c.root
	if parent != "" {
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
	}
	r := newRemoval()
	if _, err := r.removeEntry(ctx, c, pfh, dir, name, nil); err != nil {
		if parent == "" {
			// The root's handle went unchecked: a stale one means the
			// export was re-created, and a new connection mounts it again.
			err = staleRoot(err)
		}
		return err
	}
	return r.result()
}

func (s *store) Scrub(ctx context.Context, dir string) error {
	if err := volumeid.ValidateStoreDir(dir); err != nil {
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
		r := newRemoval()
		r.fsid, r.haveFSID = attr.FSID, true
		if _, err := r.emptyDir(ctx, c, fh, dir); err != nil {
			return err
		}
		return r.result()
	})
	if err != nil {
		return explain(s.ep.loc, "scrub", dir, err)
	}
	return nil
}

// removal is one RemoveAll or Scrub. A directory of another filesystem (the
// server crossing into a filesystem mounted inside the volume: its fsid
// differs from the volume's) or named .stowage in any case (the records of
// another store inside the volume) is left, and reported in a
// *backend.LeftError.
type removal struct {
	fsid     uint64
	haveFSID bool
	// blocked holds the file IDs of directories that keep something, so a
	// parent listed again does not enter (and count) them again.
	blocked map[uint64]struct{}
	left    backend.LeftError
}

// maxBlocked bounds blocked; past it the removal gives up.
const maxBlocked = 100_000

func newRemoval() *removal { return &removal{blocked: map[uint64]struct{}{}} }

func (r *removal) result() error {
	if r.left.Count > 0 {
		return &r.left
	}
	return nil
}

// outcome of removing one entry.
type outcome int

const (
	gone    outcome = iota // removed, or already gone
	kept                   // left for a reason of its own: count it
	blocked                // a directory left for what is inside: counted there
)

func isRecordsDir(name string) bool { return strings.EqualFold(name, ".stowage") }

// removeEntry removes name from directory pfh: a directory with all its
// contents, anything else (file, symlink, device) as itself. e, if not nil,
// is what a listing said about name. A missing name is not an error.
func (r *removal) removeEntry(ctx context.Context, c *conn, pfh []byte, rel, name string, e *gonfs.EntryPlus) (outcome, error) {
	if e == nil || !e.Attr.IsSet || !e.Handle.IsSet {
		if !isRecordsDir(name) {
			// Try the cheap case first: an empty directory (the common
			// delete of a fresh volume) or a non-directory.
			err := c.do(ctx, func(p procs) error { return p.rmdir(pfh, name) })
			switch {
			case err == nil, hasStatus(err, gonfs.NFS3ErrNoEnt):
				return gone, nil
			case hasStatus(err, gonfs.NFS3ErrNotDir):
				return gone, unlink(ctx, c, pfh, name)
			case !hasStatus(err, gonfs.NFS3ErrNotEmpty, gonfs.NFS3ErrExist):
				return gone, err
			}
		}
		var attr *gonfs.Fattr
		var fh []byte
		err := c.do(ctx, func(p procs) error {
			var err error
			attr, fh, err = p.lookup(pfh, name)
			return err
		})
		if hasStatus(err, gonfs.NFS3ErrNoEnt) {
			return gone, nil
		}
		if err != nil {
			return gone, err
		}
		e = &gonfs.EntryPlus{FileName: name}
		e.Attr.IsSet, e.Attr.Attr = true, *attr
		e.Handle.IsSet, e.Handle.FH = true, fh
	}
	if !e.Attr.Attr.IsDir() {
		return gone, unlink(ctx, c, pfh, name)
	}
	attr := &e.Attr.Attr
	if !r.haveFSID {
		r.fsid, r.haveFSID = attr.FSID, true // the top of RemoveAll
	}
	switch {
	case isRecordsDir(name):
		r.left.Note(rel, backend.ErrOtherStore)
		return kept, nil
	case attr.FSID != r.fsid:
		r.left.Note(rel, backend.ErrOtherFilesystem)
		return kept, nil
	}
	if _, ok := r.blocked[attr.Fileid]; ok {
		return blocked, nil
	}
	for attempt := 1; ; attempt++ {
		keeps, err := r.emptyDir(ctx, c, e.Handle.FH, rel)
		if err != nil {
			return gone, err
		}
		if keeps {
			if len(r.blocked) >= maxBlocked {
				return gone, fmt.Errorf("gave up after %d directories that keep something: %w", maxBlocked, &r.left)
			}
			r.blocked[attr.Fileid] = struct{}{}
			return blocked, nil
		}
		err = c.do(ctx, func(p procs) error { return p.rmdir(pfh, name) })
		switch {
		case err == nil, hasStatus(err, gonfs.NFS3ErrNoEnt):
			return gone, nil
		case hasStatus(err, gonfs.NFS3ErrNotDir):
			// Swapped for a non-directory since it was listed.
			return gone, unlink(ctx, c, pfh, name)
		case hasStatus(err, gonfs.NFS3ErrNotEmpty, gonfs.NFS3ErrExist) && attempt < rmdirAttempts:
			continue
		}
		return gone, fmt.Errorf("rmdir %q: %w", rel, err)
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
// messages), and reports whether something stays. It lists a batch, removes
// it, and lists again from the start: a listing cookie may not survive the
// removals, and this keeps memory bounded by one batch however big the
// directory. What stays is counted from the last listing from the start.
func (r *removal) emptyDir(ctx context.Context, c *conn, fh []byte, rel string) (bool, error) {
	var cookie, verf uint64
	var previous string // names of the last batch removed
	same := 0           // how often in a row a removed batch came back unchanged
	nKept, nBlocked := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return false, fmt.Errorf("stopped while emptying %q: %w", rel, err)
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
			return false, nil // removed by someone else meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("list %q: %w", rel, err)
		}
		removed := 0
		var names strings.Builder
		for _, e := range entries {
			if e.FileName == "." || e.FileName == ".." {
				continue
			}
			o, err := r.removeEntry(ctx, c, fh, rel+"/"+e.FileName, e.FileName, e)
			if err != nil {
				return false, err
			}
			switch o {
			case gone:
				removed++
				names.WriteString(e.FileName + "/")
			case kept:
				nKept++
			case blocked:
				nBlocked++
			}
		}
		switch {
		case removed > 0:
			// Entries that were "removed" (or already gone) but keep being
			// listed mean the server's listing is stale; do not spin on it.
			if names.String() == previous {
				if same++; same >= rmdirAttempts {
					return false, fmt.Errorf("list %q: the server keeps listing entries that are gone", rel)
				}
			} else {
				same = 0
			}
			previous = names.String()
			cookie, verf = 0, 0
			nKept, nBlocked = 0, 0
		case eof:
			r.left.Count += nKept
			return nKept+nBlocked > 0, nil
		default:
			cookie, verf = next, nextVerf
		}
	}
}
