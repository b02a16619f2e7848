package nfs

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// usageBudget bounds one count: past it the count stops and says so, so a
// volume of millions of files costs a node plugin a bounded walk, not an
// hour of GETATTRs against the server.
const usageBudget = 200_000

var errBudget = errors.New("budget spent")

// countTree adds up the blocks and files under path without following
// symlinks, counting a hard-linked file once.
func countTree(ctx context.Context, path string, budget int) (backend.Usage, error) {
	var u backend.Usage
	seen := map[uint64]bool{}
	err := filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == path {
				return err
			}
			return nil // vanished while counting: not ours to report
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if budget--; budget < 0 {
			return errBudget
		}
		info, err := e.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			u.Inodes++
			u.Bytes += info.Size()
			return nil
		}
		if st.Nlink > 1 && !e.IsDir() {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		u.Inodes++
		u.Bytes += st.Blocks * 512
		return nil
	})
	if errors.Is(err, errBudget) {
		u.Partial = true
		err = nil
	}
	return u, err
}
