package backend

import (
	"context"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// SnapshotsDir is the reserved directory at a store's root that holds
// snapshots: outside every volume (volume directories may not start with
// .stowage), so no volume can be made in, around or over a snapshot.
const SnapshotsDir = volumeid.SnapshotsDir

// Copier is implemented by stores that can copy one directory tree into
// another of the same store (snapshots, restores and clones).
type Copier interface {
	// CopyTree copies everything inside src into dst, an existing empty
	// directory of the same store, and gives dst src's mode, owner and
	// timestamps. It keeps mode, owner, timestamps, extended attributes
	// and ACLs (where the store has them), hard links, symlinks (copied as
	// links, never followed) and holes, and shares blocks (reflink) where
	// the filesystem can. It never follows a symlink out of src, never
	// crosses into another filesystem or the records directory, and holds
	// a bounded number of descriptors and bounded memory whatever the
	// tree's shape. On error dst is left partly filled: the caller removes
	// it. A cancelled ctx stops the copy soon.
	CopyTree(ctx context.Context, src, dst string) (CopyResult, error)
}

// CopyResult says what a copy did.
type CopyResult struct {
	Files int64 // entries made in dst (files, directories, links)
	Bytes int64 // file data bytes copied or shared
	// Reflinked is set when every regular file's data was shared with
	// its source (constant time in the data size) rather than copied.
	Reflinked bool
}
