// Package params parses and checks StorageClass parameters, the only
// configuration a volume gets. Every mistake is reported with the parameter's
// name and how to fix it, because the message ends up in a PVC event.
package params

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// Parameter names.
const (
	Backend       = "backend"
	Server        = "server"
	Share         = "share"
	SubDir        = "subDir"
	DirMode       = "dirMode"
	OnDelete      = "onDelete"
	ReclaimPolicy = "reclaimPolicy"
	AdoptExisting = "adoptExisting"

	// Added by the provisioner for subDir templates.
	PVCName      = "csi.storage.k8s.io/pvc/name"
	PVCNamespace = "csi.storage.k8s.io/pvc/namespace"
	PVName       = "csi.storage.k8s.io/pv/name"
)

// What DeleteVolume does with the directory.
const (
	DeleteRemove  = "delete"
	DeleteRetain  = "retain"
	DeleteArchive = "archive"
)

// DefaultSubDir names an NFS volume's directory after its PV.
const DefaultSubDir = "${pv.name}"

// Params are the checked parameters of one CreateVolume call.
type Params struct {
	Backend  string
	Server   string // nfs
	Share    string // nfs
	SubDir   string // nfs: template
	DirMode  os.FileMode
	OnDelete string
	Recycle  bool
	// Adopt lets a new volume take over an existing directory that no live
	// volume owns: one an admin made, or one kept by onDelete=retain for a
	// claim of the same namespace. Never a side effect of a name: the class
	// must say so.
	Adopt   bool
	PVCName string
	PVCNS   string
	PVName  string
}

var allowed = map[string][]string{
	volumeid.NFS:   {Backend, Server, Share, SubDir, DirMode, OnDelete, ReclaimPolicy, AdoptExisting},
	volumeid.Local: {Backend, DirMode, OnDelete, ReclaimPolicy, AdoptExisting},
}

// Parse checks the parameters of a CreateVolume request.
func Parse(in map[string]string) (Params, error) {
	p := Params{
		Backend:  in[Backend],
		Server:   in[Server],
		Share:    in[Share],
		SubDir:   in[SubDir],
		OnDelete: DeleteRemove,
		DirMode:  0o777,
		PVCName:  in[PVCName],
		PVCNS:    in[PVCNamespace],
		PVName:   in[PVName],
	}
	known, ok := allowed[p.Backend]
	if !ok {
		if p.Backend == "" {
			return p, fmt.Errorf("StorageClass parameter %s is missing; set it to nfs or local", Backend)
		}
		return p, fmt.Errorf("StorageClass parameter %s=%q is not supported; use nfs or local", Backend, p.Backend)
	}
	var unknown []string
	for k := range in {
		if !contains(known, k) && !strings.HasPrefix(k, "csi.storage.k8s.io/") {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return p, fmt.Errorf("unknown StorageClass parameter(s) %s for backend %s; allowed: %s",
			strings.Join(unknown, ", "), p.Backend, strings.Join(known, ", "))
	}
	if v, ok := in[DirMode]; ok {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o7777 {
			return p, fmt.Errorf("StorageClass parameter %s=%q is not an octal file mode; write it like 0775", DirMode, v)
		}
		p.DirMode = os.FileMode(m)
	}
	if v, ok := in[OnDelete]; ok {
		switch v {
		case DeleteRemove, DeleteRetain, DeleteArchive:
			p.OnDelete = v
		default:
			return p, fmt.Errorf("StorageClass parameter %s=%q is not supported; use delete, retain or archive", OnDelete, v)
		}
	}
	if v, ok := in[ReclaimPolicy]; ok {
		if v != "Recycle" {
			return p, fmt.Errorf("StorageClass parameter %s=%q is not supported; only Recycle goes here (set Delete or Retain in the StorageClass's own reclaimPolicy field)", ReclaimPolicy, v)
		}
		p.Recycle = true
	}
	if v, ok := in[AdoptExisting]; ok {
		switch v {
		case "true":
			p.Adopt = true
		case "false":
		default:
			return p, fmt.Errorf("StorageClass parameter %s=%q is not supported; use \"true\" or \"false\"", AdoptExisting, v)
		}
	}
	if p.Backend == volumeid.NFS {
		if err := volumeid.ValidateServer(p.Server); err != nil {
			return p, fmt.Errorf("StorageClass parameter %s: %w", Server, err)
		}
		if p.Share == "" {
			return p, fmt.Errorf("StorageClass parameter %s is missing; set it to the exported path, such as /export", Share)
		}
		if err := volumeid.ValidateShare(p.Share); err != nil {
			return p, fmt.Errorf("StorageClass parameter %s: %w", Share, err)
		}
		if p.SubDir == "" {
			p.SubDir = DefaultSubDir
		}
		if err := checkTemplate(p.SubDir); err != nil {
			return p, err
		}
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
