package volumeid

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, id := range []ID{
		{Backend: NFS, Server: "10.0.0.5", Share: "/export", Dir: "pvc-1"},
		{Backend: NFS, Server: "nfs.example.com", Share: "/srv/nfs/k8s", Dir: "team-a/data-db-0"},
		{Backend: NFS, Server: "fd00::5", Share: "/", Dir: "x"},
		{Backend: Local, Node: "worker-1", Dir: "pvc-2"},
		{Backend: NFS, Server: "10.0.0.5", Share: "/export", Dir: "team-a/data", Name: "pvc-3", OnDelete: "retain"},
		{Backend: Local, Node: "worker-1", Dir: "pvc-4", Name: "pvc-4", OnDelete: "delete"},
	} {
		got, err := Parse(id.String())
		if err != nil {
			t.Errorf("Parse(%q): %v", id.String(), err)
			continue
		}
		if got != id {
			t.Errorf("Parse(%q) = %+v, want %+v", id.String(), got, id)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"pvc-123",
		"ebs#vol-1",
		"nfs#10.0.0.5#/export",
		"nfs#10.0.0.5#/export#a#b",
		"nfs##/export#x",
		"nfs#10.0.0.5#export#x",
		"nfs#10.0.0.5#/export/../etc#x",
		"nfs#10.0.0.5#/export#../x",
		"nfs#10.0.0.5#/export#a/../../x",
		"nfs#10.0.0.5#/export#/etc",
		"nfs#10.0.0.5#/export#.",
		"nfs#10.0.0.5#/export#a//b",
		"nfs#10.0.0.5#/export#a/",
		"nfs#10.0.0.5#/export#.stowage",
		"nfs#10.0.0.5#/export#x/.stowage/y",
		"nfs#10.0.0.5#/export#a\\..\\b",
		"nfs#a/b#/export#x",
		"local##pvc-1",
		"local#node#",
		"local#node#..",
		"local#node#a\x00b",
		"nfs#s#/e#" + strings.Repeat("a", MaxLength),
		// The records directory in any letter case (a case-insensitive server).
		"nfs#10.0.0.5#/export#.STOWAGE",
		"local#node#a/.Stowage",
		// Name and onDelete come together, and say something valid.
		"nfs#10.0.0.5#/export#x#pvc-1",
		"nfs#10.0.0.5#/export#x#pvc-1#remove",
		"nfs#10.0.0.5#/export#x##delete",
		"nfs#10.0.0.5#/export#x#a/b#delete",
		"local#node#x#pvc-1#",
		"local#node#x#.stowage#delete",
	} {
		if id, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", s, id)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("nfs#10.0.0.5#/export#pvc-1")
	f.Add("local#node#pvc-1")
	f.Add("nfs#h#/e#a/../b")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		// Whatever parses must stay inside its root and survive a round trip.
		if strings.HasPrefix(id.Dir, "/") || strings.Contains("/"+id.Dir+"/", "/../") {
			t.Fatalf("Parse(%q) gave an escaping dir %q", s, id.Dir)
		}
		again, err := Parse(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

func TestNameToken(t *testing.T) {
	for name, want := range map[string]string{
		"pvc-0f3c":   "pvc-0f3c",
		"sanity.v_1": "sanity.v_1",
	} {
		if got := NameToken(name); got != want {
			t.Errorf("NameToken(%q) = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"a/b", "../x", ".stowage", "a#b", strings.Repeat("x", 200), ""} {
		got := NameToken(name)
		if !strings.HasPrefix(got, "vol-") || ValidateDir(got) != nil {
			t.Errorf("NameToken(%q) = %q, want a hashed plain name", name, got)
		}
	}
}
