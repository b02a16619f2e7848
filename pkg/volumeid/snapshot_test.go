package volumeid

import "testing"

func TestSnapshotRoundTrip(t *testing.T) {
	for _, v := range []ID{
		{Backend: NFS, Server: "10.0.0.5", Share: "/export", Dir: "a/b", Name: "pvc-1", OnDelete: "delete"},
		{Backend: Local, Node: "n1", Dir: "pvc-1", Name: "pvc-1", OnDelete: "retain"},
	} {
		s := SnapshotOf(v, "snapshot-42")
		got, err := ParseSnapshot(s.String())
		if err != nil || got != s {
			t.Fatalf("ParseSnapshot(%q) = %+v, %v; want %+v", s.String(), got, err, s)
		}
		if !s.SameRoot(v) || s.Dir() != ".stowage-snapshots/snapshot-42" {
			t.Errorf("%+v: SameRoot %v, Dir %q", s, s.SameRoot(v), s.Dir())
		}
		other := v
		other.Node, other.Server = "elsewhere", "10.9.9.9"
		if s.SameRoot(other) {
			t.Errorf("%+v is on the root of %+v", s, other)
		}
	}
}

func TestSnapshotNameIsHashedWhenNotPlain(t *testing.T) {
	s := SnapshotOf(ID{Backend: Local, Node: "n"}, "../../etc")
	if s.Name == "../../etc" || ValidateDir(s.Name) != nil {
		t.Fatalf("name %q was not made plain", s.Name)
	}
}

func TestParseSnapshotRefuses(t *testing.T) {
	for _, bad := range []string{
		"", "nfs#s#/e#d", "snapshot", "snapshot#local##x", "snapshot#local#n#../x", "snapshot#local#n#",
		"snapshot#nfs#s#relative#x", "snapshot#zfs#n#x", "snapshot#local#n#x#y", "snapshot#local#n#.stowage",
	} {
		if s, err := ParseSnapshot(bad); err == nil {
			t.Errorf("ParseSnapshot(%q) = %+v, want an error", bad, s)
		}
	}
}

func TestValidateStoreDir(t *testing.T) {
	for _, ok := range []string{"a/b", "pvc-1", ".stowage-snapshots/snapshot-1"} {
		if err := ValidateStoreDir(ok); err != nil {
			t.Errorf("ValidateStoreDir(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{".stowage-snapshots", ".stowage-snapshots/", ".stowage-snapshots/a/b",
		".stowage-snapshots/..", ".stowage/x", "../x", ".STOWAGE-snapshots/x"} {
		if ValidateStoreDir(bad) == nil {
			t.Errorf("ValidateStoreDir(%q) accepted", bad)
		}
	}
}
