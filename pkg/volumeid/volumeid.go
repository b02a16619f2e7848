// Package volumeid encodes everything Stowage needs to find a volume again into
// its CSI volume ID, so that the driver keeps no state of its own.
//
// Formats (fields separated by '#', which no field may contain):
//
//	nfs#<server>#<share>#<dir>     e.g. nfs#10.0.0.5#/export#default-data-pvc-1234
//	local#<node>#<dir>             e.g. local#worker-1#pvc-1234
//
// <dir> is relative to the share (NFS) or to the node's base path (local).
package volumeid

import (
	"fmt"
	"path"
	"strings"
)

// Backend names, as used in volume IDs and in the StorageClass parameter "backend".
const (
	NFS   = "nfs"
	Local = "local"
)

const sep = "#"

// MaxLength bounds an ID; the CSI spec asks plugins to stay within 128 bytes
// where they can, Kubernetes allows more, so we refuse only absurd lengths.
const MaxLength = 1024

// ID identifies one Stowage volume.
type ID struct {
	Backend string // NFS or Local
	Server  string // NFS only
	Share   string // NFS only: the exported path, absolute
	Node    string // local only: the node that holds the volume
	Dir     string // relative, clean, never escaping its root
}

// String renders the ID in its wire format.
func (id ID) String() string {
	if id.Backend == Local {
		return strings.Join([]string{Local, id.Node, id.Dir}, sep)
	}
	return strings.Join([]string{NFS, id.Server, id.Share, id.Dir}, sep)
}

// Parse reads a volume ID; any malformed ID is an error that says what is wrong.
func Parse(s string) (ID, error) {
	if s == "" {
		return ID{}, fmt.Errorf("volume ID is empty")
	}
	if len(s) > MaxLength {
		return ID{}, fmt.Errorf("volume ID is %d bytes long, more than the %d allowed", len(s), MaxLength)
	}
	f := strings.Split(s, sep)
	var id ID
	switch f[0] {
	case NFS:
		if len(f) != 4 {
			return ID{}, fmt.Errorf("volume ID %q: want nfs#<server>#<share>#<dir>", s)
		}
		id = ID{Backend: NFS, Server: f[1], Share: f[2], Dir: f[3]}
		if err := ValidateServer(id.Server); err != nil {
			return ID{}, fmt.Errorf("volume ID %q: %w", s, err)
		}
		if err := ValidateShare(id.Share); err != nil {
			return ID{}, fmt.Errorf("volume ID %q: %w", s, err)
		}
	case Local:
		if len(f) != 3 {
			return ID{}, fmt.Errorf("volume ID %q: want local#<node>#<dir>", s)
		}
		id = ID{Backend: Local, Node: f[1], Dir: f[2]}
		if id.Node == "" {
			return ID{}, fmt.Errorf("volume ID %q: node is empty", s)
		}
	default:
		return ID{}, fmt.Errorf("volume ID %q: unknown backend %q (want nfs or local)", s, f[0])
	}
	if err := ValidateDir(id.Dir); err != nil {
		return ID{}, fmt.Errorf("volume ID %q: %w", s, err)
	}
	return id, nil
}

// ValidateDir checks that dir is a clean relative path that stays inside its
// root: no "..", no absolute path, no empty or "." components, no '#'.
func ValidateDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("directory is empty")
	}
	if strings.HasPrefix(dir, "/") {
		return fmt.Errorf("directory %q is absolute; use a path relative to the share or base path", dir)
	}
	if strings.ContainsAny(dir, sep+"\x00\\") {
		return fmt.Errorf("directory %q contains '#', '\\' or NUL", dir)
	}
	for _, part := range strings.Split(dir, "/") {
		switch part {
		case "", ".":
			return fmt.Errorf("directory %q has an empty or '.' component", dir)
		case "..":
			return fmt.Errorf("directory %q escapes its root with '..'; use a path inside the share", dir)
		}
		if strings.HasPrefix(part, ".stowage") {
			return fmt.Errorf("directory %q uses the reserved name .stowage", dir)
		}
	}
	if path.Clean(dir) != dir {
		return fmt.Errorf("directory %q is not a clean path", dir)
	}
	return nil
}

// ValidateServer checks an NFS server name or address.
func ValidateServer(server string) error {
	if server == "" {
		return fmt.Errorf("NFS server is empty; set the StorageClass parameter server")
	}
	if strings.ContainsAny(server, sep+"/ \x00") {
		return fmt.Errorf("NFS server %q contains '#', '/', a space or NUL", server)
	}
	return nil
}

// ValidateShare checks an NFS export path.
func ValidateShare(share string) error {
	if !strings.HasPrefix(share, "/") {
		return fmt.Errorf("NFS share %q must be an absolute export path such as /export", share)
	}
	if strings.ContainsAny(share, sep+"\x00") {
		return fmt.Errorf("NFS share %q contains '#' or NUL", share)
	}
	if path.Clean(share) != share {
		return fmt.Errorf("NFS share %q is not a clean path (write it as %q)", share, path.Clean(share))
	}
	return nil
}
