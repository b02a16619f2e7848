package integration

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// sample is the data tests put into volumes: a file, a nested file, an
// empty directory and a symlink (which a scrub must remove, not follow).
var sample = map[string]string{
	"index.html":         "<h1>hello</h1>\n",
	"logs/2024/app.log":  strings.Repeat("line\n", 1000),
	"empty/":             "",
	"link-to-index.html": "->index.html",
}

// writeTree writes files (name -> content; "x/" is a directory, "->t" a
// symlink to t) into dir, as a pod using the volume would.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readTree reads dir back in writeTree's notation; nil if dir is missing.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "->" + target
			return err
		case d.IsDir():
			entries, err := os.ReadDir(p)
			if err == nil && len(entries) == 0 {
				out[rel+"/"] = ""
			}
			return err
		default:
			b, err := os.ReadFile(p)
			out[rel] = string(b)
			return err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// entries lists the names in dir (nil if dir does not exist).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// records lists the directories the driver keeps records for under root
// (its bookkeeping in root/.stowage), limited to those under prefix.
func records(t *testing.T, root, prefix string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, ".stowage", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, f := range files {
		// The local store keeps a record as a symlink holding the JSON;
		// NFS as a file.
		var b []byte
		target, err := os.Readlink(f)
		if err == nil {
			b = []byte(target)
		} else {
			b, err = os.ReadFile(f)
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		var rec struct{ Dir string }
		if json.Unmarshal(b, &rec) == nil && strings.HasPrefix(rec.Dir, prefix) {
			dirs = append(dirs, rec.Dir)
		}
	}
	sort.Strings(dirs)
	return dirs
}

// backend is one place volumes live, with what a test needs to use it.
type backend struct {
	name  string
	class func(name string, params map[string]string, mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass
	node  string // selected node for claims; "" for NFS
	// volumes lists the volume directories that exist and the records the
	// driver keeps, so that a test can check nothing leaked.
	volumes func() (dirs, recs []string)
}

// backends starts what each backend needs (a controller for NFS when an NFS
// server is configured, one node for local) and describes them.
func (h *harness) backends() []backend {
	h.t.Helper()
	if h.bs != nil {
		return h.bs
	}
	var out []backend
	if env.nfs != nil {
		h.controller("controller", false)
		out = append(out, backend{
			name: "nfs",
			class: func(name string, params map[string]string, mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
				return h.nfsClass("nfs-"+name, params, mod...)
			},
			volumes: func() ([]string, []string) {
				return entries(h.t, h.nfsDir()), records(h.t, env.nfs.dir, h.id+"/")
			},
		})
	}
	node := h.nodeName("a")
	h.node(node)
	out = append(out, backend{
		name: "local", node: node,
		class: func(name string, params map[string]string, mod ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
			return h.localClass("local-"+name, params, mod...)
		},
		volumes: func() ([]string, []string) {
			var dirs []string
			for _, e := range entries(h.t, h.bases[node]) {
				if e != ".stowage" {
					dirs = append(dirs, e)
				}
			}
			return dirs, records(h.t, h.bases[node], "")
		},
	})
	h.bs = out
	return out
}

// claimOn creates a claim for backend b (with the selected node for local).
func (h *harness) claimOn(b backend, name string, sc *storagev1.StorageClass, modes ...v1.PersistentVolumeAccessMode) *v1.PersistentVolumeClaim {
	h.t.Helper()
	if len(modes) == 0 {
		modes = []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}
	}
	return h.claim(name, sc, b.node, "64Mi", modes)
}

// expectNoVolumes checks that backend b holds no volume directory and no
// record: nothing half-made, nothing leaked.
func (h *harness) expectNoVolumes(b backend) {
	h.t.Helper()
	dirs, recs := b.volumes()
	if len(dirs) > 0 || len(recs) > 0 {
		h.t.Errorf("%s backend still holds volume directories %v and records %v", b.name, dirs, recs)
	}
}
