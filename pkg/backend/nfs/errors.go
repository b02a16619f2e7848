package nfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	gonfs "github.com/willscott/go-nfs-client/nfs"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// transportError marks a failure of the connection itself (as opposed to an
// answer from the server): the connection is retired and the operation may be
// retried on a new one.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// mountError is a MOUNT protocol refusal (mountstat3).
type mountError struct{ code uint32 }

func (e *mountError) Error() string {
	if name, ok := mountStatNames[e.code]; ok {
		return name
	}
	return fmt.Sprintf("mount status %d", e.code)
}

var mountStatNames = map[uint32]string{
	gonfs.MNT3ErrPerm:        "MNT3ERR_PERM",
	gonfs.MNT3ErrNoEnt:       "MNT3ERR_NOENT",
	gonfs.MNT3ErrIO:          "MNT3ERR_IO",
	gonfs.MNT3ErrAcces:       "MNT3ERR_ACCES",
	gonfs.MNT3ErrNotDir:      "MNT3ERR_NOTDIR",
	gonfs.MNT3ErrInval:       "MNT3ERR_INVAL",
	gonfs.MNT3ErrNameTooLong: "MNT3ERR_NAMETOOLONG",
	gonfs.MNT3ErrNotSupp:     "MNT3ERR_NOTSUPP",
	gonfs.MNT3ErrServerFault: "MNT3ERR_SERVERFAULT",
}

// nfsStatus reports the NFSv3 status behind err, if err is an answer from
// the server. The library turns NOENT, EXIST and PERM into os errors.
func nfsStatus(err error) (uint32, bool) {
	var ne *gonfs.Error
	switch {
	case errors.As(err, &ne):
		return ne.ErrorNum, true
	case errors.Is(err, os.ErrNotExist):
		return gonfs.NFS3ErrNoEnt, true
	case errors.Is(err, os.ErrExist):
		return gonfs.NFS3ErrExist, true
	case errors.Is(err, os.ErrPermission):
		return gonfs.NFS3ErrPerm, true
	}
	return 0, false
}

func hasStatus(err error, codes ...uint32) bool {
	s, ok := nfsStatus(err)
	if !ok {
		return false
	}
	for _, c := range codes {
		if s == c {
			return true
		}
	}
	return false
}

// fromLibrary classifies an error from the library: anything the server
// answered (an NFS status, a MOUNT status, an RPC-level rejection, which the
// library words "rpc: ...") leaves the connection healthy; everything else
// (disconnects, short or garbled replies) marks it as a transport failure.
func fromLibrary(err error) error {
	if err == nil {
		return nil
	}
	var te *transportError
	var me *mountError
	if errors.As(err, &te) || errors.As(err, &me) || errors.Is(err, os.ErrInvalid) ||
		strings.HasPrefix(err.Error(), "rpc: ") {
		return err
	}
	if _, ok := nfsStatus(err); ok {
		return err
	}
	return &transportError{err}
}

// isTransport reports whether err means the connection can no longer be trusted.
func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// explain wraps err from operation op on path with what it means for the
// user and, where one exists, the backend sentinel callers test with
// errors.Is.
func explain(loc, op, path string, err error) error {
	where := fmt.Sprintf("%s %q on %s", op, path, loc)
	s, ok := nfsStatus(err)
	if !ok {
		return fmt.Errorf("%s: %w", where, err)
	}
	switch s {
	case gonfs.NFS3ErrNoEnt:
		return fmt.Errorf("%s: %w: %w", where, backend.ErrNotFound, err)
	case gonfs.NFS3ErrNoSpc, gonfs.NFS3ErrDQuot:
		return fmt.Errorf("%s: %w (%w); free space on the NFS server or raise its quota", where, backend.ErrNoSpace, err)
	case gonfs.NFS3ErrPerm, gonfs.NFS3ErrAcces:
		return fmt.Errorf("%s: permission denied by the NFS server (%w); the export must let the controller write as root (no_root_squash) or as the configured uid/gid", where, err)
	case gonfs.NFS3ErrROFS:
		return fmt.Errorf("%s: the share is exported read-only (%w); Stowage needs a read-write export", where, err)
	case gonfs.NFS3ErrNameTooLong:
		return fmt.Errorf("%s: name too long for the NFS server (%w); use a shorter directory name", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// unreachable words a failure to connect at all.
func unreachable(server string, err error) error {
	return fmt.Errorf("cannot reach NFS server %s: %w; check the StorageClass parameter server and that the server is running", server, err)
}

// mountRefused words a MOUNT refusal of the share.
func mountRefused(server, share string, err error) error {
	var me *mountError
	if errors.As(err, &me) {
		switch me.code {
		case gonfs.MNT3ErrNoEnt, gonfs.MNT3ErrAcces, gonfs.MNT3ErrPerm, gonfs.MNT3ErrNotDir:
			// NFS-Ganesha answers ACCES for a path it does not export at
			// all, so these all read as "not exported to us".
			return fmt.Errorf("NFS server %s does not export %s to this client (MOUNT answered %w); check the StorageClass parameter share against the server's exports", server, share, err)
		}
	}
	return fmt.Errorf("mount %s:%s: %w", server, share, err)
}
