package params

import (
	"path"
	"strings"
	"testing"
)

func nfsParams(extra map[string]string) map[string]string {
	m := map[string]string{"backend": "nfs", "server": "10.0.0.5", "share": "/export"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		want    Params
		wantErr string
	}{
		{name: "nfs defaults", in: nfsParams(nil),
			want: Params{Backend: "nfs", Server: "10.0.0.5", Share: "/export", SubDir: DefaultSubDir, DirMode: 0o777, OnDelete: "delete"}},
		{name: "local with everything", in: map[string]string{"backend": "local", "dirMode": "0750", "onDelete": "archive", "reclaimPolicy": "Recycle"},
			want: Params{Backend: "local", DirMode: 0o750, OnDelete: "archive", Recycle: true}},
		{name: "metadata passes", in: nfsParams(map[string]string{PVCName: "data", PVCNamespace: "team", PVName: "pvc-1", "csi.storage.k8s.io/fstype": ""}),
			want: Params{Backend: "nfs", Server: "10.0.0.5", Share: "/export", SubDir: DefaultSubDir, DirMode: 0o777, OnDelete: "delete", PVCName: "data", PVCNS: "team", PVName: "pvc-1"}},
		{name: "no backend", in: map[string]string{}, wantErr: "parameter backend is missing"},
		{name: "bad backend", in: map[string]string{"backend": "ceph"}, wantErr: `backend="ceph" is not supported`},
		{name: "unknown parameter named", in: nfsParams(map[string]string{"pathPattern": "x", "archiveOnDelete": "true"}), wantErr: "archiveOnDelete, pathPattern"},
		{name: "server on local", in: map[string]string{"backend": "local", "server": "x"}, wantErr: "unknown StorageClass parameter(s) server"},
		{name: "missing server", in: map[string]string{"backend": "nfs", "share": "/export"}, wantErr: "NFS server is empty"},
		{name: "missing share", in: map[string]string{"backend": "nfs", "server": "s"}, wantErr: "parameter share is missing"},
		{name: "relative share", in: nfsParams(map[string]string{"share": "export"}), wantErr: "absolute export path"},
		{name: "bad mode", in: nfsParams(map[string]string{"dirMode": "rwx"}), wantErr: "not an octal file mode"},
		{name: "mode too big", in: nfsParams(map[string]string{"dirMode": "17777"}), wantErr: "not an octal file mode"},
		{name: "bad onDelete", in: nfsParams(map[string]string{"onDelete": "shred"}), wantErr: "use delete, retain or archive"},
		{name: "reclaim Delete here", in: nfsParams(map[string]string{"reclaimPolicy": "Delete"}), wantErr: "only Recycle goes here"},
		{name: "template escapes", in: nfsParams(map[string]string{"subDir": "../${pvc.name}"}), wantErr: "escapes its root"},
		{name: "template absolute", in: nfsParams(map[string]string{"subDir": "/etc/${pvc.name}"}), wantErr: "is absolute"},
		{name: "template unknown var", in: nfsParams(map[string]string{"subDir": "${pvc.annotations.x}"}), wantErr: "unknown variable"},
		{name: "template reserved", in: nfsParams(map[string]string{"subDir": ".stowage/${pv.name}"}), wantErr: "reserved"},
		{name: "template reserved upper case", in: nfsParams(map[string]string{"subDir": ".STOWAGE/${pv.name}"}), wantErr: "reserved"},
		{name: "adopt", in: map[string]string{"backend": "local", "adoptExisting": "true"},
			want: Params{Backend: "local", DirMode: 0o777, OnDelete: "delete", Adopt: true}},
		{name: "bad adopt", in: nfsParams(map[string]string{"adoptExisting": "yes"}), wantErr: `use "true" or "false"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("Parse() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVolumeDir(t *testing.T) {
	tests := []struct {
		subDir, ns, pvc, pv, want, wantErr string
	}{
		{subDir: "", pv: "pvc-1", want: "pvc-1"},
		{subDir: "${pvc.namespace}/${pvc.name}", ns: "team", pvc: "data", pv: "pvc-1", want: "team/data"},
		{subDir: "k8s/${pvc.namespace}-${pvc.name}-${pv.name}", ns: "a", pvc: "b", pv: "c", want: "k8s/a-b-c"},
		{subDir: "${pvc.namespace}/${pvc.name}", pv: "pvc-1", wantErr: "does not carry"},
		{subDir: "${pvc.name}", pvc: "..", pv: "p", wantErr: "escape"},
		{subDir: "${pvc.name}", pvc: "a/../../b", pv: "p", wantErr: "escape"},
		{subDir: "x${pvc.name}", pvc: "/etc", pv: "p", wantErr: "escape"},
	}
	for _, tt := range tests {
		in := nfsParams(map[string]string{PVCNamespace: tt.ns, PVCName: tt.pvc, PVName: tt.pv})
		if tt.subDir != "" {
			in["subDir"] = tt.subDir
		}
		p, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%v): %v", in, err)
		}
		got, err := p.VolumeDir("fallback")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("VolumeDir(%q) = %q, %v; want error containing %q", tt.subDir, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("VolumeDir(%q) = %q, %v; want %q", tt.subDir, got, err, tt.want)
		}
	}
}

func FuzzSubDir(f *testing.F) {
	f.Add("${pvc.namespace}/${pvc.name}", "team", "data", "pvc-1")
	f.Add("../${pv.name}", "a", "b", "c")
	f.Add("x/${pvc.name}/y", "..", "/", ".")
	f.Fuzz(func(t *testing.T, subDir, ns, pvc, pv string) {
		p, err := Parse(nfsParams(map[string]string{"subDir": subDir, PVCNamespace: ns, PVCName: pvc, PVName: pv}))
		if err != nil {
			return
		}
		dir, err := p.VolumeDir("fallback")
		if err != nil {
			return
		}
		// No accepted template and values may leave the share.
		joined := path.Join("/export", dir)
		if dir == "" || !strings.HasPrefix(joined, "/export/") || path.Clean(dir) != dir {
			t.Fatalf("subDir %q with (%q,%q,%q) gave %q", subDir, ns, pvc, pv, dir)
		}
	})
}
