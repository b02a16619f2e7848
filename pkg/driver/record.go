package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// record is what Stowage writes next to a volume (in <root>/.stowage/) so
// that CreateVolume is idempotent, two volumes never share a directory, and
// DeleteVolume knows what the class asked it to do.
type record struct {
	Name     string `json:"name"`
	Dir      string `json:"dir"`
	Capacity int64  `json:"capacityBytes"`
	OnDelete string `json:"onDelete"`
	// Retained marks a volume deleted with onDelete=retain: the directory
	// stays, and the record stays too, so a retried DeleteVolume knows the
	// directory was kept on purpose. A new volume may adopt the directory.
	Retained bool      `json:"retained,omitempty"`
	Created  time.Time `json:"created"`
}

// recordName keys a record by its directory, since the directory is what
// must never be shared.
func recordName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "vol-" + hex.EncodeToString(sum[:16]) + ".json"
}

func readRecord(ctx context.Context, s backend.Store, dir string) (*record, error) {
	b, err := s.ReadFile(ctx, recordName(dir))
	if errors.Is(err, backend.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("record for %s is corrupt: %w", dir, err)
	}
	return &r, nil
}

func writeRecord(ctx context.Context, s backend.Store, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.WriteFile(ctx, recordName(r.Dir), b)
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// dirName turns a CSI volume name into a directory name. Kubernetes names
// (pvc-<uid>) are used as they are; anything else is hashed so that no name
// can produce a path that escapes or collides with the reserved .stowage.
func dirName(name string) string {
	if plainName.MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "vol-" + hex.EncodeToString(sum[:16])
}
