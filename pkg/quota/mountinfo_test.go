//go:build linux

package quota

import (
	"errors"
	"io/fs"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name, line string
		want       Mount
		dev        string
		ok         bool
	}{
		{
			name: "xfs with optional fields",
			line: "36 35 259:3 / /var/lib/stowage rw,relatime shared:1 master:2 - xfs /dev/nvme0n1p3 rw,attr2,inode64,prjquota",
			want: Mount{Point: "/var/lib/stowage", FSType: "xfs", Source: "/dev/nvme0n1p3", Options: "rw,relatime,rw,attr2,inode64,prjquota"},
			dev:  "259:3", ok: true,
		},
		{
			name: "escaped space in mount point",
			line: `40 35 7:0 / /mnt/my\040disk rw - ext4 /dev/loop0 rw,prjquota`,
			want: Mount{Point: "/mnt/my disk", FSType: "ext4", Source: "/dev/loop0", Options: "rw,rw,prjquota"},
			dev:  "7:0", ok: true,
		},
		{name: "no separator", line: "40 35 7:0 / /mnt rw ext4 /dev/loop0 rw", ok: false},
		{name: "truncated after separator", line: "40 35 7:0 / /mnt rw - ext4", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, dev, ok := parseMountinfo(tt.line)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (m != tt.want || dev != tt.dev) {
				t.Errorf("got %+v dev %s, want %+v dev %s", m, dev, tt.want, tt.dev)
			}
		})
	}
}

func TestFindMount(t *testing.T) {
	tests := []struct {
		path, point, fsType string
	}{
		{path: "/proc/self", point: "/proc", fsType: "proc"},
		{path: "/", point: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			m, err := FindMount(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if m.Point != tt.point || (tt.fsType != "" && m.FSType != tt.fsType) {
				t.Errorf("FindMount(%s) = %+v, want point %s type %s", tt.path, m, tt.point, tt.fsType)
			}
		})
	}
	if _, err := FindMount("/does/not/exist"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FindMount of a missing path: %v, want not-exist", err)
	}
}
