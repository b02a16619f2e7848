package volumeid

import (
	"fmt"
	"strings"
)

// Snapshot identifies one Stowage snapshot. Its directory is derived from
// its name under the reserved snapshots directory of the root, so a
// snapshot ID can never name a volume's directory or anything outside.
//
//	snapshot#nfs#<server>#<share>#<name>    e.g. snapshot#nfs#10.0.0.5#/export#snapshot-1234
//	snapshot#local#<node>#<name>            e.g. snapshot#local#worker-1#snapshot-1234
type Snapshot struct {
	Backend string
	Server  string // NFS only
	Share   string // NFS only
	Node    string // local only
	Name    string // a plain name (NameToken)
}

const snapshotPrefix = "snapshot"

// SnapshotsDir is the reserved directory at a root that holds snapshots
// (it starts with .stowage, which no volume directory may).
const SnapshotsDir = ".stowage-snapshots"

// SnapshotOf names snapshot name of the root that holds volume v.
func SnapshotOf(v ID, name string) Snapshot {
	return Snapshot{Backend: v.Backend, Server: v.Server, Share: v.Share, Node: v.Node, Name: NameToken(name)}
}

// String renders the ID in its wire format.
func (s Snapshot) String() string {
	f := []string{snapshotPrefix, NFS, s.Server, s.Share, s.Name}
	if s.Backend == Local {
		f = []string{snapshotPrefix, Local, s.Node, s.Name}
	}
	return strings.Join(f, sep)
}

// Dir is the snapshot's directory, relative to its root.
func (s Snapshot) Dir() string { return SnapshotsDir + "/" + s.Name }

// Root is a volume ID on the same root as the snapshot, for finding its
// store; its Dir is the snapshot's directory.
func (s Snapshot) Root() ID {
	return ID{Backend: s.Backend, Server: s.Server, Share: s.Share, Node: s.Node, Dir: s.Dir()}
}

// SameRoot reports whether volume v lives on the snapshot's root (the same
// node, or the same share of the same server).
func (s Snapshot) SameRoot(v ID) bool {
	return v.Backend == s.Backend && v.Server == s.Server && v.Share == s.Share && v.Node == s.Node
}

// Where names the snapshot's root for messages, like ID.Where.
func (s Snapshot) Where() string { return s.Root().Where() }

// ParseSnapshot reads a snapshot ID; a malformed one is an error that says
// what is wrong.
func ParseSnapshot(str string) (Snapshot, error) {
	if str == "" {
		return Snapshot{}, fmt.Errorf("snapshot ID is empty")
	}
	if len(str) > MaxLength {
		return Snapshot{}, fmt.Errorf("snapshot ID is %d bytes long, more than the %d allowed", len(str), MaxLength)
	}
	f := strings.Split(str, sep)
	if f[0] != snapshotPrefix || len(f) < 2 {
		return Snapshot{}, fmt.Errorf("snapshot ID %q does not start with %q: not a Stowage snapshot", str, snapshotPrefix+sep)
	}
	var s Snapshot
	switch f[1] {
	case NFS:
		if len(f) != 5 {
			return Snapshot{}, fmt.Errorf("snapshot ID %q: want snapshot#nfs#<server>#<share>#<name>", str)
		}
		s = Snapshot{Backend: NFS, Server: f[2], Share: f[3], Name: f[4]}
		if err := ValidateServer(s.Server); err != nil {
			return Snapshot{}, fmt.Errorf("snapshot ID %q: %w", str, err)
		}
		if err := ValidateShare(s.Share); err != nil {
			return Snapshot{}, fmt.Errorf("snapshot ID %q: %w", str, err)
		}
	case Local:
		if len(f) != 4 {
			return Snapshot{}, fmt.Errorf("snapshot ID %q: want snapshot#local#<node>#<name>", str)
		}
		s = Snapshot{Backend: Local, Node: f[2], Name: f[3]}
		if s.Node == "" {
			return Snapshot{}, fmt.Errorf("snapshot ID %q: node is empty", str)
		}
	default:
		return Snapshot{}, fmt.Errorf("snapshot ID %q: unknown backend %q (want nfs or local)", str, f[1])
	}
	if s.Name == "" || NameToken(s.Name) != s.Name {
		return Snapshot{}, fmt.Errorf("snapshot ID %q: name %q is not a plain name", str, s.Name)
	}
	return s, nil
}

// ValidateStoreDir checks a directory a store is asked to act on: a
// volume's (ValidateDir) or a snapshot's, exactly SnapshotsDir/<plain name>.
func ValidateStoreDir(dir string) error {
	if name, ok := strings.CutPrefix(dir, SnapshotsDir+"/"); ok {
		if name == "" || NameToken(name) != name {
			return fmt.Errorf("snapshot directory %q: %q is not a plain name", dir, name)
		}
		return nil
	}
	return ValidateDir(dir)
}
