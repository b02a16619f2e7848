package nfs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"strings"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// store is a backend.Store for one NFS share.
type store struct {
	ep     *endpoint
	pooled bool // Close leaves the connection to the Pool
}

var _ backend.Store = (*store)(nil)

// Open connects to share on server and returns a Store that owns its
// connection; Close it when done. Prefer a Pool where Stores are wanted per
// request.
func Open(ctx context.Context, server, share string) (backend.Store, error) {
	return OpenWithOptions(ctx, server, share, Options{})
}

// OpenWithOptions is Open with non-default ports, identity or timeouts.
func OpenWithOptions(ctx context.Context, server, share string, o Options) (backend.Store, error) {
	ep, err := newEndpoint(server, share, o)
	if err != nil {
		return nil, err
	}
	if _, err := ep.get(ctx); err != nil {
		return nil, err
	}
	return &store{ep: ep}, nil
}

// run calls fn with a live connection and, if the connection broke under
// it, once more with a fresh one. Every caller of run is idempotent.
func (s *store) run(ctx context.Context, fn func(c *conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := s.ep.get(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		if err == nil || attempt > 0 || !c.isBroken() || ctx.Err() != nil {
			return err
		}
		klog.V(2).InfoS("Retrying on a new NFS connection", "share", s.ep.loc, "err", err)
	}
}

// walk looks rel up from the share's root one component at a time; NFS
// LOOKUP never follows a symlink, and a symlink in the middle of rel fails
// with NOTDIR, so the result is always inside the share.
func walk(p procs, root []byte, rel string) (*gonfs.Fattr, []byte, error) {
	if rel == "" {
		attr, err := p.getattr(root)
		return attr, root, staleRoot(err)
	}
	fh := root
	var attr *gonfs.Fattr
	for i, name := range strings.Split(rel, "/") {
		a, h, err := p.lookup(fh, name)
		if err != nil {
			if i == 0 {
				err = staleRoot(err)
			}
			return nil, nil, err
		}
		attr, fh = a, h
	}
	return attr, fh, nil
}

// staleRoot turns a stale root handle (the export was re-created or moved)
// into a transport error, so that the connection is re-mounted.
func staleRoot(err error) error {
	if hasStatus(err, gonfs.NFS3ErrStale, gonfs.NFS3ErrBadHandle) {
		return &transportError{fmt.Errorf("the share's root file handle is stale: %w", err)}
	}
	return err
}

// notDirError says that a path component exists but is not a directory.
type notDirError struct {
	rel  string
	kind uint32
}

func (e *notDirError) Error() string {
	kind := "a file"
	if e.kind == gonfs.NF3Lnk {
		kind = "a symlink, which Stowage never follows"
	}
	return fmt.Sprintf("%q exists and is %s, not a directory; remove it or choose another directory", e.rel, kind)
}

// mkdirAll makes rel and its missing parents with perm, and returns its
// handle and whether this call's MKDIR made rel itself (false when it was
// there already, or when that cannot be told: a retried call).
func mkdirAll(p procs, root []byte, rel string, perm os.FileMode) (fh []byte, made bool, err error) {
	if rel == "" {
		return root, false, nil
	}
	fh = root
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		var attr *gonfs.Fattr
		var h []byte
		var err error
		if i == len(parts)-1 {
			// The last component is usually new (a volume being created):
			// ask for it directly and save a LOOKUP.
			var mkErr error
			if h, mkErr = p.mkdir(fh, name, perm); mkErr == nil {
				return h, true, nil
			}
			// Whatever MKDIR said (EXIST, or ACCES/ROFS from a server that
			// checks those first), an existing directory is success.
			if attr, h, err = p.lookup(fh, name); hasStatus(err, gonfs.NFS3ErrNoEnt) || isTransport(mkErr) {
				err = mkErr
			}
		} else {
			attr, h, err = p.lookup(fh, name)
		}
		if hasStatus(err, gonfs.NFS3ErrNoEnt) {
			h, err = p.mkdir(fh, name, perm)
			if hasStatus(err, gonfs.NFS3ErrExist) { // lost a race with another creator
				attr, h, err = p.lookup(fh, name)
			} else if err == nil {
				fh, made = h, i == len(parts)-1
				continue
			}
		}
		if err != nil {
			if i == 0 {
				err = staleRoot(err)
			}
			return nil, false, err
		}
		if !attr.IsDir() {
			return nil, false, &notDirError{rel: path.Join(parts[:i+1]...), kind: attr.Type}
		}
		fh = h
	}
	return fh, made, nil
}

func (s *store) Mkdir(ctx context.Context, dir string, perm os.FileMode) error {
	_, err := s.MkdirMade(ctx, dir, perm)
	return err
}

// MkdirMade is Mkdir that also says whether it made dir itself: MKDIR's own
// answer, which the driver uses to skip listing a directory it knows was
// empty when its record already existed.
func (s *store) MkdirMade(ctx context.Context, dir string, perm os.FileMode) (made bool, err error) {
	if err := volumeid.ValidateStoreDir(dir); err != nil {
		return false, err
	}
	err = s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			var err error
			_, made, err = mkdirAll(p, c.root, dir, perm)
			return err
		})
	})
	if err != nil {
		return false, explain(s.ep.loc, "mkdir", dir, err)
	}
	return made, nil
}

func (s *store) Exists(ctx context.Context, dir string) (bool, error) {
	if err := volumeid.ValidateStoreDir(dir); err != nil {
		return false, err
	}
	var isDir bool
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			attr, _, err := walk(p, c.root, dir)
			if err == nil {
				isDir = attr.IsDir()
			}
			return err
		})
	})
	switch {
	case err == nil:
		return isDir, nil
	case hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir):
		return false, nil
	}
	return false, explain(s.ep.loc, "stat", dir, err)
}

func (s *store) Rename(ctx context.Context, dir, newDir string) error {
	for _, d := range []string{dir, newDir} {
		if err := volumeid.ValidateStoreDir(d); err != nil {
			return err
		}
	}
	if dir == newDir || strings.HasPrefix(newDir, dir+"/") {
		return fmt.Errorf("rename %q to %q on %s: cannot move a directory into itself", dir, newDir, s.ep.loc)
	}
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error { return rename(p, c.root, dir, newDir) })
	})
	if err != nil {
		return explain(s.ep.loc, "rename", dir, err)
	}
	return nil
}

func rename(p procs, root []byte, dir, newDir string) error {
	srcParent, srcName := split(dir)
	_, spfh, err := walk(p, root, srcParent)
	if err == nil {
		_, _, err = p.lookup(spfh, srcName)
	}
	_, _, dstErr := walk(p, root, newDir)
	if dstErr != nil && !hasStatus(dstErr, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) {
		return dstErr
	}
	if hasStatus(err, gonfs.NFS3ErrNoEnt, gonfs.NFS3ErrNotDir) {
		if dstErr == nil {
			// Already moved: a retried archive after a lost reply.
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	if dstErr == nil {
		return fmt.Errorf("target %q already exists: %w", newDir, os.ErrExist)
	}
	dstParent, dstName := split(newDir)
	dpfh, _, err := mkdirAll(p, root, dstParent, 0o755)
	if err != nil {
		return err
	}
	return p.rename(spfh, srcName, dpfh, dstName)
}

// split is path.Split without the trailing slash on the parent.
func split(rel string) (parent, name string) {
	parent, name = path.Split(rel)
	return strings.TrimSuffix(parent, "/"), name
}

func (s *store) Capacity(ctx context.Context) (total, available int64, err error) {
	var st *fsstat
	err = s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			var err error
			st, err = p.fsstat(c.root)
			return staleRoot(err)
		})
	})
	if err != nil {
		return 0, 0, explain(s.ep.loc, "fsstat", "/", err)
	}
	return clampInt64(st.TBytes), clampInt64(st.ABytes), nil
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// Close releases the connection of a Store from Open; a Store from a Pool
// shares its connection, which Pool.Close releases.
func (s *store) Close() error {
	if !s.pooled {
		s.ep.close()
	}
	return nil
}

var errClosed = errors.New("the NFS store is closed")
