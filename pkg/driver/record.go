package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// record is what Stowage writes next to a volume (in <root>/.stowage/)
// before the volume's directory is made. It is the proof that a directory
// belongs to a volume: CreateVolume is idempotent through it, two volumes
// never share or nest their directories, and DeleteVolume and the recycler
// act on a directory only when its record names the volume they act for.
type record struct {
	Name     string `json:"name"`
	Dir      string `json:"dir"`
	Capacity int64  `json:"capacityBytes"`
	OnDelete string `json:"onDelete"`
	// Retained marks a volume deleted with onDelete=retain: the directory
	// stays, and the record stays too, so a retried DeleteVolume knows the
	// directory was kept on purpose, and no other volume is ever made in or
	// around it. A class with adoptExisting may hand it to a new claim of
	// the same namespace.
	Retained bool      `json:"retained,omitempty"`
	Created  time.Time `json:"created"`
	// Namespace and Claim name the claim the volume was made for (empty for
	// a bare CSI call): retained data goes back only to its own namespace.
	Namespace string `json:"namespace,omitempty"`
	Claim     string `json:"claim,omitempty"`
	// DirMode is what Recycle resets the directory to.
	DirMode os.FileMode `json:"dirMode,omitempty"`
	// Params fingerprints the class parameters, so that a second
	// CreateVolume of the same name with other parameters is refused.
	Params string `json:"params,omitempty"`
	// Pod and Target are set for an inline ephemeral volume: the UID of
	// its pod and where kubelet published it (ephemeral.go).
	Pod    string `json:"pod,omitempty"`
	Target string `json:"target,omitempty"`
	// Source is the volume a snapshot or clone was copied from, or the
	// snapshot a volume was restored from; Copying is set until that copy
	// is complete (snapshot.go, fill.go).
	Source  string `json:"source,omitempty"`
	Copying bool   `json:"copying,omitempty"`
}

const (
	recordPrefix = "vol-"
	recordSuffix = ".json"
)

// recordName keys a record by its directory, since the directory is what
// must never be shared.
func recordName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return recordPrefix + hex.EncodeToString(sum[:16]) + recordSuffix
}

// isRecordName tells records from temporary files a crash left behind.
func isRecordName(name string) bool {
	return strings.HasPrefix(name, recordPrefix) && strings.HasSuffix(name, recordSuffix)
}

func readRecord(ctx context.Context, s backend.Store, dir string) (*record, error) {
	r, err := readRecordFile(ctx, s, recordName(dir))
	if err != nil || r == nil {
		return nil, err
	}
	if r.Dir != dir {
		return nil, fmt.Errorf("record %s is for directory %q, not %q: the records directory .stowage was tampered with; nothing is done until it is repaired", recordName(dir), r.Dir, dir)
	}
	return r, nil
}

func readRecordFile(ctx context.Context, s backend.Store, name string) (*record, error) {
	b, err := s.ReadRecord(ctx, name)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("record %s is corrupt: %w", name, err)
	}
	return &r, nil
}

// allRecords reads every record of a store.
func allRecords(ctx context.Context, s backend.Store) ([]*record, error) {
	names, err := s.ListRecords(ctx)
	if err != nil {
		return nil, err
	}
	var all []*record
	for _, n := range names {
		if !isRecordName(n) {
			continue
		}
		rec, err := readRecordFile(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			all = append(all, rec)
		}
	}
	return all, nil
}

func writeRecord(ctx context.Context, s backend.Store, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.WriteRecord(ctx, recordName(r.Dir), b)
}

// fingerprint sums the class parameters a volume was made with. The
// per-claim values the provisioner adds (csi.storage.k8s.io/...) are left
// out: a retry for the same claim carries the same ones anyway.
func fingerprint(in map[string]string) string {
	keys := make([]string, 0, len(in))
	for k := range in {
		if !strings.HasPrefix(k, "csi.storage.k8s.io/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, in[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
