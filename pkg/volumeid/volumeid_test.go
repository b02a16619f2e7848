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
