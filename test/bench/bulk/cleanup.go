package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// cleanNFS removes what dyn runs left behind on the shared export when
// their control plane was thrown away: the volume directories under subDir
// and the driver's records of them (.stowage/vol-<sha256(dir)[:16]>.json,
// see pkg/driver/record.go), and nothing else.
func cleanNFS(exportDir, subDir string) error {
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
	for _, e := range entries {
		sum := sha256.Sum256([]byte(subDir + "/" + e.Name()))
		rec := filepath.Join(exportDir, ".stowage", "vol-"+hex.EncodeToString(sum[:16])+".json")
		if err := os.Remove(rec); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return os.RemoveAll(filepath.Join(exportDir, subDir))
}
