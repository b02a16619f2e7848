package local

import (
	"context"
	"fmt"
	"os"
	"path"
	"sync"

	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/quota"
)

// Quota enforces the size of volume directories with project quotas on the
// filesystem behind the store's base path (XFS or ext4, see QUOTA.md).
//
// A volume's project ID is kept in the one place the kernel reads it: the
// directory's own fsx_projid. There is no mapping file to fall out of step
// with the disk, be lost with .stowage, or need locking across processes.
// New IDs are a hash of the directory name, moved on while the filesystem
// already charges anything to the ID (see quota.FS.FreeProject), so two
// volumes never share one.
type Quota struct {
	store *Store
	fs    *quota.FS
	// mu makes picking a free ID and claiming it one step; only this node
	// plugin assigns IDs on this base path.
	mu sync.Mutex
}

// NewQuota returns a Quota for the store, or an error wrapping
// quota.ErrUnavailable that says why sizes cannot be enforced there and how
// to prepare the filesystem. Callers then go on without enforcement and
// report usage with WalkUsage.
func NewQuota(s *Store) (*Quota, error) {
	fs, err := quota.Open(s.Base())
	if err != nil {
		return nil, fmt.Errorf("sizes of local volumes will not be enforced: %w", err)
	}
	klog.InfoS("Local volume sizes enforced with project quotas", "base", s.Base(), "fsType", fs.Mount.FSType, "device", fs.Mount.Source)
	return &Quota{store: s, fs: fs}, nil
}

// SetQuota limits dir to bytes, giving it a project of its own first; 0
// removes the limit but keeps the project, so Usage stays cheap.
func (q *Quota) SetQuota(ctx context.Context, dir string, bytes int64) error {
	f, err := q.openDir(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	id, err := q.ownProject(f, dir)
	if err != nil {
		return err
	}
	if id == 0 {
		if bytes == 0 {
			return nil
		}
		if id, err = q.assign(f, dir); err != nil {
			return err
		}
	}
	if err := q.fs.SetLimit(id, bytes); err != nil {
		return fmt.Errorf("quota for %s under %s: %w", dir, q.store.Base(), err)
	}
	klog.V(4).InfoS("Set volume quota", "dir", dir, "project", id, "bytes", bytes)
	return nil
}

// Usage reports what the filesystem charges to dir's project; a directory
// without one (made before quotas were enabled) is measured by walking it.
func (q *Quota) Usage(ctx context.Context, dir string) (int64, int64, error) {
	u, err := q.Measure(ctx, dir)
	return u.Bytes, u.Inodes, err
}

// Measure is Usage with the project's limits (zero where it has none).
func (q *Quota) Measure(ctx context.Context, dir string) (quota.Usage, error) {
	f, err := q.openDir(dir)
	if err != nil {
		return quota.Usage{}, err
	}
	defer f.Close()
	id, err := q.ownProject(f, dir)
	if err != nil {
		return quota.Usage{}, err
	}
	if id == 0 {
		b, n, err := WalkUsage(ctx, q.store, dir)
		return quota.Usage{Bytes: b, Inodes: n}, err
	}
	u, err := q.fs.Usage(id)
	if err != nil {
		return quota.Usage{}, fmt.Errorf("usage of %s under %s: %w", dir, q.store.Base(), err)
	}
	return u, nil
}

// ownProject returns dir's project ID, or 0 when it has none of its own:
// a directory created under a parent with PROJINHERIT carries the parent's
// ID, and setting a volume's limit on that would cap the whole parent.
func (q *Quota) ownProject(f *os.File, dir string) (uint32, error) {
	id, err := quota.ProjectID(f)
	if err != nil || id == 0 {
		return 0, err
	}
	parent, err := q.store.root.Open(path.Dir(dir))
	if err != nil {
		return 0, fmt.Errorf("open parent of %s under %s: %w", dir, q.store.Base(), wrap(err))
	}
	defer parent.Close()
	pid, err := quota.ProjectID(parent)
	if err != nil {
		return 0, err
	}
	if pid == id {
		return 0, nil
	}
	return id, nil
}

func (q *Quota) assign(f *os.File, dir string) (uint32, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	id, err := q.fs.FreeProject(dir)
	if err != nil {
		return 0, fmt.Errorf("quota for %s under %s: %w", dir, q.store.Base(), err)
	}
	// PROJINHERIT only reaches what is created from now on; a volume that
	// already holds data (made before quotas were enabled) is tagged too.
	// The directory comes last, so if tagging fails the next call starts
	// over instead of finding a project that covers only part of the data.
	if err := tagContents(q.store, dir, id); err != nil {
		return 0, fmt.Errorf("quota for %s under %s: tag existing files: %w", dir, q.store.Base(), err)
	}
	if err := quota.SetProjectID(f, id); err != nil {
		return 0, fmt.Errorf("quota for %s under %s: %w", dir, q.store.Base(), err)
	}
	klog.V(2).InfoS("Assigned project quota ID", "dir", dir, "project", id)
	return id, nil
}

// openDir opens a volume directory refusing symlinks on the way, so a
// quota can never be put on something outside the volume.
func (q *Quota) openDir(dir string) (*os.File, error) {
	if _, err := q.store.Resolve(dir); err != nil {
		return nil, fmt.Errorf("volume %s under %s: %w", dir, q.store.Base(), err)
	}
	f, err := q.store.root.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s under %s: %w", dir, q.store.Base(), wrap(err))
	}
	return f, nil
}
