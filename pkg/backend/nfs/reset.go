package nfs

import (
	"context"
	"fmt"
	"os"

	gonfs "github.com/willscott/go-nfs-client/nfs"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Reset makes the (scrubbed, empty) volume directory dir look freshly
// made, so that a recycled volume carries nothing of its previous tenant:
// mode exactly perm, and the owner a MKDIR from this client gets, which is
// the AUTH_SYS identity of its calls (Options.UID and GID). With root
// squashing the server owns new directories by its anonymous user and
// refuses to give them away, so the owner is only set where it differs.
// NFSv3 has no call for ACLs (the server's own NFSACL side protocol is not
// spoken here), so ACLs set on the server's side stay.
func (s *store) Reset(ctx context.Context, dir string, perm os.FileMode) error {
	if err := volumeid.ValidateStoreDir(dir); err != nil {
		return err
	}
	uid, gid := s.ep.opts.UID, s.ep.opts.GID
	err := s.run(ctx, func(c *conn) error {
		return c.do(ctx, func(p procs) error {
			attr, fh, err := walk(p, c.root, dir)
			if hasStatus(err, gonfs.NFS3ErrNotDir) {
				return fmt.Errorf("a parent of it is not a directory: %w", backend.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if !attr.IsDir() {
				return &notDirError{rel: dir, kind: attr.Type}
			}
			set := gonfs.Sattr3{Mode: gonfs.SetMode{SetIt: true, Mode: nfsMode(perm)}}
			if attr.UID != uid {
				set.UID = gonfs.SetUID{SetIt: true, UID: uid}
			}
			if attr.GID != gid {
				set.GID = gonfs.SetUID{SetIt: true, UID: gid}
			}
			return p.setattr(fh, set)
		})
	})
	if err != nil {
		return explain(s.ep.loc, "reset", dir, err)
	}
	return nil
}

// nfsMode is perm as NFS mode bits, the special bits included.
func nfsMode(perm os.FileMode) uint32 {
	m := uint32(perm.Perm())
	if perm&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if perm&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if perm&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}
