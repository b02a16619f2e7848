// Package volumeid encodes everything Stowage needs to find a volume again into
// its CSI volume ID, so that the driver keeps no state of its own.
//
// Formats (fields separated by '#', which no field may contain):
//
//	nfs#<server>#<share>#<dir>#<name>#<onDelete>   e.g. nfs#10.0.0.5#/export#team-a/data#pvc-1234#retain
//	local#<node>#<dir>#<name>#<onDelete>           e.g. local#worker-1#pvc-1234#pvc-1234#delete
//
// <dir> is relative to the share (NFS) or to the node's base path (local).
// <name> is the volume the directory was made for, and <onDelete> what a
// delete does to it: the record next to the directory must agree with both
// before anything is removed, so that a handle can never make Stowage remove
// a directory that belongs to another volume, and a lost record can never
// turn retain into delete. Handles without the last two fields (volumes made
// by an earlier Stowage, static PVs written by an admin) are still read.
package volumeid

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
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
	// Name is the volume the directory was made for (a plain name, see
	// NameToken), empty for static volumes and handles of earlier versions.
	Name string
	// OnDelete is what DeleteVolume does with the directory (delete, retain,
	// archive); empty where Name is.
	OnDelete string
}

// String renders the ID in its wire format.
func (id ID) String() string {
	f := []string{NFS, id.Server, id.Share, id.Dir}
	if id.Backend == Local {
		f = []string{Local, id.Node, id.Dir}
	}
	if id.Name != "" {
		f = append(f, id.Name, id.OnDelete)
	}
	return strings.Join(f, sep)
}

// Where names the volume's root for messages users read: "node n1" or
// "NFS share server:/export".
func (id ID) Where() string {
	if id.Backend == Local {
		return "node " + id.Node
	}
	return "NFS share " + id.Server + ":" + id.Share
}

// RootKind is what the volume's root is called: "node" or "share".
func (id ID) RootKind() string {
	if id.Backend == Local {
		return "node"
	}
	return "share"
}

// Owned reports whether the handle names the volume its directory was made
// for (a dynamically provisioned volume of this version).
func (id ID) Owned() bool { return id.Name != "" }

// onDeleteValues are what the last field may say.
var onDeleteValues = map[string]bool{"delete": true, "retain": true, "archive": true}

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
		if len(f) != 4 && len(f) != 6 {
			return ID{}, fmt.Errorf("volume ID %q: want nfs#<server>#<share>#<dir>[#<name>#<onDelete>]", s)
		}
		id = ID{Backend: NFS, Server: f[1], Share: f[2], Dir: f[3]}
		if len(f) == 6 {
			id.Name, id.OnDelete = f[4], f[5]
		}
		if err := ValidateServer(id.Server); err != nil {
			return ID{}, fmt.Errorf("volume ID %q: %w", s, err)
		}
		if err := ValidateShare(id.Share); err != nil {
			return ID{}, fmt.Errorf("volume ID %q: %w", s, err)
		}
	case Local:
		if len(f) != 3 && len(f) != 5 {
			return ID{}, fmt.Errorf("volume ID %q: want local#<node>#<dir>[#<name>#<onDelete>]", s)
		}
		id = ID{Backend: Local, Node: f[1], Dir: f[2]}
		if len(f) == 5 {
			id.Name, id.OnDelete = f[3], f[4]
		}
		if id.Node == "" {
			return ID{}, fmt.Errorf("volume ID %q: node is empty", s)
		}
	default:
		return ID{}, fmt.Errorf("volume ID %q: unknown backend %q (want nfs or local)", s, f[0])
	}
	if err := ValidateDir(id.Dir); err != nil {
		return ID{}, fmt.Errorf("volume ID %q: %w", s, err)
	}
	if id.Name != "" || id.OnDelete != "" {
		if NameToken(id.Name) != id.Name {
			return ID{}, fmt.Errorf("volume ID %q: volume name %q is not a plain name", s, id.Name)
		}
		if !onDeleteValues[id.OnDelete] {
			return ID{}, fmt.Errorf("volume ID %q: onDelete %q is not delete, retain or archive", s, id.OnDelete)
		}
	}
	return id, nil
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// NameToken turns a CSI volume name into a plain name that fits in an ID and
// in a directory name: Kubernetes names (pvc-<uid>) stay as they are,
// anything else is hashed, so no name can produce a path that escapes or
// collides with the reserved .stowage.
func NameToken(name string) string {
	if plainName.MatchString(name) && !isReserved(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "vol-" + hex.EncodeToString(sum[:16])
}

// isReserved reports whether a path element is Stowage's records directory,
// in any letter case: a case-insensitive server sees .STOWAGE as .stowage.
func isReserved(part string) bool {
	return len(part) >= len(reserved) && strings.EqualFold(part[:len(reserved)], reserved)
}

const reserved = ".stowage"

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
		if isReserved(part) {
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
