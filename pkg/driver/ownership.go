package driver

import (
	"context"
	"os"
	"path"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// The rules every backend obeys, checked here once for both: a directory
// belongs to exactly one volume, proven by its record; no volume's directory
// contains or sits inside another's; nothing is removed or scrubbed unless
// the record names the volume the call acts for.

// enclosingVolume returns the record of a volume whose directory contains
// dir, if there is one: one lookup per parent directory.
func enclosingVolume(ctx context.Context, s backend.Store, dir string) (*record, error) {
	for p := path.Dir(dir); p != "."; p = path.Dir(p) {
		rec, err := readRecord(ctx, s, p)
		if err != nil || rec != nil {
			return rec, err
		}
	}
	return nil, nil
}

// volumesInside returns the records of volumes whose directories lie inside
// dir. It reads every record, so it is kept for the rare paths that take an
// existing directory (adoption, static volumes) rather than one they made.
func volumesInside(ctx context.Context, s backend.Store, dir string) ([]*record, error) {
	all, err := allRecords(ctx, s)
	if err != nil {
		return nil, err
	}
	var inside []*record
	for _, rec := range all {
		// Fold case: a case-insensitive server sees DB and db as one
		// directory. The record at exactly dir is the caller's own.
		if rec != nil && rec.Dir != dir && (strings.EqualFold(rec.Dir, dir) ||
			(len(rec.Dir) > len(dir) && strings.EqualFold(rec.Dir[:len(dir)+1], dir+"/"))) {
			inside = append(inside, rec)
		}
	}
	return inside, nil
}

// checkNotNested refuses a directory inside another volume's, or around
// other volumes' directories (the latter only where asked: it reads every
// record).
func checkNotNested(ctx context.Context, s backend.Store, id volumeid.ID, around bool) error {
	outer, err := enclosingVolume(ctx, s, id.Dir)
	if err != nil {
		return storeError(err, "read the records of the parents of %s", id.Dir)
	}
	if outer != nil {
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s is inside directory %s of volume %s%s; a volume never sits inside another, so nothing was done. Give the StorageClasses that share this %s subDir templates that cannot nest (for example ${pvc.namespace}/${pvc.name} in every class)",
			id.Dir, id.Where(), outer.Dir, outer.Name, ofClaim(outer), id.RootKind())
	}
	if !around {
		return nil
	}
	inside, err := volumesInside(ctx, s, id.Dir)
	if err != nil {
		return storeError(err, "read the records on %s", id.Where())
	}
	if len(inside) > 0 {
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s holds directory %s of volume %s%s (and %d more); a volume never contains another, so nothing was done",
			id.Dir, id.Where(), inside[0].Dir, inside[0].Name, ofClaim(inside[0]), len(inside)-1)
	}
	return nil
}

// madeDirs is a Store whose Mkdir can say whether it made the directory
// itself, rather than finding it there (the NFS store: MKDIR's own answer).
type madeDirs interface {
	MkdirMade(ctx context.Context, dir string, perm os.FileMode) (made bool, err error)
}

// makeVolumeDir makes a new volume's directory once its record is written,
// and reports whether this call made it. A directory made here was empty
// after the record existed, so nothing can be nested in it unnoticed: a
// create inside it that raced with this one makes its own directory later,
// and its check of the records of its parents (checkAfterMkdir) finds this
// record and backs off. Only a directory found already there (made by a
// racing create, or on a store that cannot tell) must be listed again.
func makeVolumeDir(ctx context.Context, s backend.Store, dir string, perm os.FileMode) (made bool, err error) {
	if m, ok := s.(madeDirs); ok {
		return m.MkdirMade(ctx, dir, perm)
	}
	return false, s.Mkdir(ctx, dir, perm)
}

// checkOwner refuses to act on a directory for a volume its record does not
// name: a handle that points at another volume's directory, a record and a
// handle that disagree on what deletion does, or (pvName set) a PV that is
// not the one the volume was made for.
func checkOwner(id volumeid.ID, rec *record, pvName string) error {
	if rec == nil {
		if id.Owned() {
			return status.Errorf(codes.FailedPrecondition,
				"the record of volume %s (%s/%s on %s) is missing, so Stowage cannot prove the directory belongs to it; nothing was done. If the directory is this volume's, empty or remove it by hand and delete the PV",
				id.Name, recordDirName, recordName(id.Dir), id.Where())
		}
		return nil
	}
	if rec.Pod != "" {
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s is the inline volume of pod %s/%s (UID %s); it goes with its pod, never through a PV; nothing was done", id.Dir, id.Where(), rec.Namespace, strings.TrimPrefix(rec.Claim, "pod "), rec.Pod)
	}
	if !id.Owned() && rec.Params != "" && !rec.Retained {
		// Records with Params are written only by this version, whose
		// handles always carry the name: a handle without one is a static
		// PV pointing at a volume Stowage made.
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s belongs to volume %s%s; a static handle never acts on a directory Stowage made; nothing was done", id.Dir, id.Where(), rec.Name, ofClaim(rec))
	}
	if id.Owned() && volumeid.NameToken(rec.Name) != id.Name {
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s belongs to volume %s%s, not to %s; nothing was done", id.Dir, id.Where(), rec.Name, ofClaim(rec), id.Name)
	}
	if id.Owned() && rec.OnDelete != id.OnDelete {
		return status.Errorf(codes.FailedPrecondition,
			"volume %s says onDelete=%s but its record on %s says %s; nothing was done. Fix the record or the PV so that they agree",
			id.Name, id.OnDelete, id.Where(), rec.OnDelete)
	}
	if pvName != "" && rec.Name != pvName {
		return status.Errorf(codes.FailedPrecondition,
			"directory %s on %s belongs to volume %s%s, not to PV %s; nothing was done", id.Dir, id.Where(), rec.Name, ofClaim(rec), pvName)
	}
	return nil
}

const recordDirName = ".stowage"

func ofClaim(r *record) string {
	if r.Claim == "" {
		return ""
	}
	return " (claim " + r.Namespace + "/" + r.Claim + ")"
}

// nameIndex remembers which parameters each volume name was created with
// in this process, so that the same name asked again with other parameters
// (which may name another directory, share or server, where no record is
// found) is refused as the CSI spec asks. Bounded: a restart or an evicted
// entry falls back to the record check, which covers the same directory.
type nameIndex struct {
	mu    sync.Mutex
	byTok map[string]string // name token → "<fingerprint>|<directory key>"
}

const nameIndexMax = 100000

func newNameIndex() *nameIndex { return &nameIndex{byTok: map[string]string{}} }

// conflicts reports whether name was created here with other parameters.
func (n *nameIndex) conflicts(name, value string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	old, ok := n.byTok[volumeid.NameToken(name)]
	return ok && old != value
}

// remember records the parameters of a volume that was created.
func (n *nameIndex) remember(name, value string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	tok := volumeid.NameToken(name)
	if _, ok := n.byTok[tok]; !ok && len(n.byTok) >= nameIndexMax {
		for k := range n.byTok { // drop one arbitrary entry
			delete(n.byTok, k)
			break
		}
	}
	n.byTok[tok] = value
}

func (n *nameIndex) forget(tok string) {
	n.mu.Lock()
	delete(n.byTok, tok)
	n.mu.Unlock()
}
