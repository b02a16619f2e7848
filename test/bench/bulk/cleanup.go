package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/stowage-csi/stowage/pkg/backend/nfs"
)

// cleanNFS removes what dyn runs left behind on the shared export when
// their control plane was thrown away: the volume directories under subDir
// and the driver's records of them (.stowage/vol-<sha256(dir)[:16]>.json,
// see pkg/driver/record.go), and nothing else. It lists through the local
// directory behind the share but removes through NFS: removing behind
// NFS-Ganesha's back leaves it a cached handle for subDir, and the next
// run's first mkdir under it fails with NFS3ERR_STALE.
func cleanNFS(exportDir, server, share, subDir string) error {
	if exportDir == "" || subDir == "" || path.IsAbs(subDir) || path.Clean(subDir) != subDir || subDir == "." {
		return fmt.Errorf("nfs-cleanup needs -export-dir and a plain relative -subdir")
	}
	entries, err := os.ReadDir(filepath.Join(exportDir, subDir))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := nfs.Open(ctx, server, share)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, e := range entries {
		sum := sha256.Sum256([]byte(subDir + "/" + e.Name()))
		if err := st.RemoveRecord(ctx, "vol-"+hex.EncodeToString(sum[:16])+".json"); err != nil {
			return err
		}
	}
	return st.RemoveAll(ctx, subDir)
}
