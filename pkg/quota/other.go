//go:build !linux

package quota

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// ErrUnavailable is wrapped by Open when the filesystem cannot enforce
// project quotas.
var ErrUnavailable = errors.New("project quotas unavailable")

// Mount is the filesystem a path lives on.
type Mount struct{ Point, FSType, Source, Options string }

// FS is a filesystem with project quotas; only Linux has them.
type FS struct{ Mount Mount }

// Usage is what the filesystem charges to one project.
type Usage struct{ Bytes, Inodes, Limit int64 }

func Open(dir string) (*FS, error) {
	return nil, fmt.Errorf("%w at %s: project quotas need Linux, not %s", ErrUnavailable, dir, runtime.GOOS)
}

func (*FS) SetLimit(uint32, int64) error       { return ErrUnavailable }
func (*FS) Usage(uint32) (Usage, error)        { return Usage{}, ErrUnavailable }
func (*FS) FreeProject(string) (uint32, error) { return 0, ErrUnavailable }
func ProjectID(*os.File) (uint32, error)       { return 0, ErrUnavailable }
func SetProjectID(*os.File, uint32) error      { return ErrUnavailable }
