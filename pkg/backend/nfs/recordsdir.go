package nfs

import (
	"sync"
	"time"

	gonfs "github.com/willscott/go-nfs-client/nfs"
)

// recordsDirTTL is how long a connection reuses the records directory's file
// handle before looking .stowage up by name again.
//
// Why caching the handle is safe: it is only the handle, never what the
// directory holds. Other controllers (and other Stowage installations) may
// share the share and write records at any moment, so every record is still
// read from, and created in, the server's directory itself; a cached handle
// only saves the LOOKUP of ".stowage" in the root. Stowage never removes or
// renames .stowage. One removed by hand answers NFS3ERR_STALE, and the call
// is retried once with the name looked up again. One renamed away by hand
// and replaced by another would be followed for at most this long, as a
// kernel NFS client's lookup cache would.
const recordsDirTTL = 10 * time.Second

// recordsDirCache is one connection's cached handle of .stowage.
type recordsDirCache struct {
	mu sync.Mutex
	fh []byte
	at time.Time
}

func (r *recordsDirCache) get() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fh == nil || time.Since(r.at) > recordsDirTTL {
		return nil
	}
	return r.fh
}

func (r *recordsDirCache) set(fh []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fh, r.at = fh, time.Now()
}

func (r *recordsDirCache) forget() { r.set(nil) }

// recordsDir returns the handle of .stowage and whether it came from the
// cache; create makes a missing one (mode 0700: records are Stowage's own).
func (c *conn) recordsDir(p procs, create bool) (fh []byte, cached bool, err error) {
	if fh := c.records.get(); fh != nil {
		return fh, true, nil
	}
	attr, fh, err := p.lookup(c.root, recordDir)
	if create && hasStatus(err, gonfs.NFS3ErrNoEnt) {
		if fh, err = p.mkdir(c.root, recordDir, 0o700); err == nil {
			c.records.set(fh)
			return fh, false, nil
		}
		if hasStatus(err, gonfs.NFS3ErrExist) { // made by someone else meanwhile
			attr, fh, err = p.lookup(c.root, recordDir)
		}
	}
	if err != nil {
		return nil, false, staleRoot(err)
	}
	if !attr.IsDir() {
		return nil, false, &notDirError{rel: recordDir, kind: attr.Type}
	}
	c.records.set(fh)
	return fh, false, nil
}

// withRecordsDir calls fn with the handle of .stowage. When a cached handle
// turns out stale, it is dropped and fn runs once more with the name looked
// up again; every fn is idempotent.
func (c *conn) withRecordsDir(p procs, create bool, fn func(dir []byte) error) error {
	dir, cached, err := c.recordsDir(p, create)
	if err != nil {
		return err
	}
	err = fn(dir)
	if cached && hasStatus(err, gonfs.NFS3ErrStale, gonfs.NFS3ErrBadHandle) {
		c.records.forget()
		if dir, _, err = c.recordsDir(p, create); err != nil {
			return err
		}
		err = fn(dir)
	}
	return err
}
