// Package backend defines where Stowage volumes live. A Store is one root that
// holds volume directories: an NFS share (reached in userspace by the
// controller) or a node's local base path. Every path given to a Store is
// relative to its root and already validated with volumeid.ValidateStoreDir; a
// Store must still refuse to follow a symlink planted inside a volume.
package backend

import (
	"context"
	"errors"
	"os"
)

// ErrNotFound is returned (wrapped) when a directory or record does not exist.
var ErrNotFound = errors.New("not found")

// ErrNoSpace is returned (wrapped) when the store has no room left.
var ErrNoSpace = errors.New("no space left")

// Store is one root directory that holds volumes.
type Store interface {
	// Mkdir creates dir (and missing parents) with perm; an existing
	// directory is not an error.
	Mkdir(ctx context.Context, dir string, perm os.FileMode) error
	// Exists reports whether dir exists and is a directory.
	Exists(ctx context.Context, dir string) (bool, error)
	// Empty reports whether dir exists and, if it does, whether it holds
	// nothing. Something other than a directory in its place is an error.
	Empty(ctx context.Context, dir string) (exists, empty bool, err error)
	// RemoveAll removes dir and everything under it, and nothing else. A
	// missing dir is not an error. Symlinks inside are removed, never followed.
	RemoveAll(ctx context.Context, dir string) error
	// Rename moves dir to newDir (used to archive a volume on delete).
	Rename(ctx context.Context, dir, newDir string) error
	// Scrub removes everything inside dir but keeps dir itself. A missing
	// dir wraps ErrNotFound. Like RemoveAll it never crosses into another
	// filesystem or another store's records, and reports what it left.
	Scrub(ctx context.Context, dir string) error
	// Reset gives an emptied dir the owner, exactly perm, and none of the
	// ACLs or extended attributes a previous tenant set: a fresh volume's.
	Reset(ctx context.Context, dir string, perm os.FileMode) error
	// The record API: Stowage's own small records (a few hundred bytes
	// each, one per volume directory, named by the caller with a single
	// path element) under the reserved directory .stowage at the root.
	// WriteRecord replaces atomically where the store can; ReadRecord of a
	// missing record wraps ErrNotFound; ListRecords of a missing records
	// directory is empty.
	ReadRecord(ctx context.Context, name string) ([]byte, error)
	WriteRecord(ctx context.Context, name string, data []byte) error
	RemoveRecord(ctx context.Context, name string) error
	ListRecords(ctx context.Context) ([]string, error)
	// Capacity reports the total and available bytes of the filesystem
	// behind the root.
	Capacity(ctx context.Context) (total, available int64, err error)
	// Close releases connections.
	Close() error
}

// Quota is implemented by stores that can enforce a size limit per directory
// (local disk with project quotas).
type Quota interface {
	// SetQuota limits dir to bytes; 0 removes the limit.
	SetQuota(ctx context.Context, dir string, bytes int64) error
	// Usage reports bytes and inodes used by dir.
	Usage(ctx context.Context, dir string) (bytes, inodes int64, err error)
}
