// Command scrub measures Recycle's scrub: ScrubVolume (the driver method the
// recycler calls) on a volume holding many small files and a few large ones,
// against the floor of removing the same tree with the plainest tool there
// is: `rm -rf` for a local volume, the userspace NFS client's own recursive
// RemoveAll (go-nfs-client, no Stowage code) for an NFS volume. Each
// measurement gets a freshly built, identical tree; scrub and floor
// alternate so that neither always runs on a warmer cache.
//
//	scrub -backend local -dir /tmp/x -files 100000 -large 3 -out local.json
//	scrub -backend nfs -export-dir /tmp/stowage-nfs/export -server 127.0.0.1 -share /export -files 10000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
	"github.com/stowage-csi/stowage/pkg/backend/nfs"
	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

type tree struct {
	files, perDir, large int
	smallSize, largeSize int64
}

// Result of one scrub benchmark.
type Result struct {
	Backend   string    `json:"backend"`
	Files     int       `json:"files"`
	Large     int       `json:"large_files"`
	LargeMiB  int64     `json:"large_mib"`
	Floor     string    `json:"floor"`
	Rounds    int       `json:"rounds"`
	ScrubS    []float64 `json:"scrub_s"`
	FloorS    []float64 `json:"floor_s"`
	Date      string    `json:"date"`
	Directory string    `json:"directory"`
}

const (
	node = "bench-node"
	// Where test/nfs/ganesha.sh serves NFS and MOUNT, which need no rpcbind.
	nfsPort, mountPort = 2049, 20048
)

func main() {
	backendName := flag.String("backend", "local", "local or nfs")
	dir := flag.String("dir", "/tmp/stowage-bench/scrub", "local: base path to work in (same filesystem for both)")
	exportDir := flag.String("export-dir", "", "nfs: the local directory behind the share (the tree is built there)")
	server := flag.String("server", "127.0.0.1", "nfs server")
	share := flag.String("share", "/export", "nfs share")
	files := flag.Int("files", 100000, "small files")
	perDir := flag.Int("per-dir", 1000, "small files per sub-directory")
	large := flag.Int("large", 3, "large files")
	largeMiB := flag.Int64("large-mib", 64, "size of each large file")
	rounds := flag.Int("rounds", 2, "measurements of each (alternating)")
	out := flag.String("out", "", "result JSON (default stdout)")
	flag.Parse()
	t := tree{files: *files, perDir: *perDir, large: *large, smallSize: 512, largeSize: *largeMiB << 20}
	res := &Result{Backend: *backendName, Files: *files, Large: *large, LargeMiB: *largeMiB, Rounds: *rounds, Date: time.Now().UTC().Format(time.RFC3339)}
	var err error
	switch *backendName {
	case "local":
		err = benchLocal(t, *dir, *rounds, res)
	case "nfs":
		err = benchNFS(t, *exportDir, *server, *share, *rounds, res)
	default:
		err = fmt.Errorf("unknown -backend %q", *backendName)
	}
	if err == nil {
		var b []byte
		b, err = json.MarshalIndent(res, "", " ")
		if err == nil && *out != "" {
			err = os.WriteFile(*out, append(b, '\n'), 0o644)
		} else if err == nil {
			fmt.Println(string(b))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scrub:", err)
		os.Exit(1)
	}
}

// build makes the tree under root (which must exist), as a pod would leave it.
func (t tree) build(root string) error {
	small := make([]byte, t.smallSize)
	for i := 0; i < t.files; i++ {
		d := filepath.Join(root, fmt.Sprintf("d%04d", i/t.perDir))
		if i%t.perDir == 0 {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%06d", i)), small, 0o644); err != nil {
			return err
		}
	}
	big := make([]byte, 1<<20)
	for i := 0; i < t.large; i++ {
		f, err := os.Create(filepath.Join(root, fmt.Sprintf("large-%d.bin", i)))
		if err != nil {
			return err
		}
		for n := int64(0); n < t.largeSize; n += int64(len(big)) {
			if _, err := f.Write(big); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	// Start both from data on disk, not in dirty page cache.
	return exec.Command("sync").Run()
}

func timed(fn func() error) (float64, error) {
	start := time.Now()
	err := fn()
	return time.Since(start).Seconds(), err
}

func empty(dir string) error {
	names, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(names) != 0 {
		return fmt.Errorf("%s still holds %d entries after the scrub", dir, len(names))
	}
	return nil
}

func benchLocal(t tree, base string, rounds int, res *Result) error {
	res.Floor, res.Directory = "rm -rf (GNU coreutils) of the same tree", base
	if err := os.MkdirAll(base, 0o711); err != nil {
		return err
	}
	store, err := local.Open(base)
	if err != nil {
		return err
	}
	d, err := driver.New(driver.Options{Name: "csi.stowage.io", Version: "bench", NodeID: node, Backends: []backend.Backend{local.NewBackend(node, store, nil)}})
	if err != nil {
		return err
	}
	ctx := context.Background()
	id := volumeid.ID{Backend: volumeid.Local, Node: node, Dir: "pvc-scrub"}
	vol := filepath.Join(base, id.Dir)
	floorDir := filepath.Join(base, "floor-tree")
	scrub := func() error {
		if err := os.Mkdir(vol, 0o777); err != nil && !os.IsExist(err) {
			return err
		}
		if err := t.build(vol); err != nil {
			return err
		}
		s, err := timed(func() error { return d.ScrubVolume(ctx, id.String(), "") })
		if err != nil {
			return err
		}
		res.ScrubS = append(res.ScrubS, s)
		return empty(vol)
	}
	floor := func() error {
		if err := os.Mkdir(floorDir, 0o777); err != nil {
			return err
		}
		if err := t.build(floorDir); err != nil {
			return err
		}
		f, err := timed(func() error { return exec.Command("rm", "-rf", floorDir).Run() })
		res.FloorS = append(res.FloorS, f)
		return err
	}
	for r := 0; r < rounds; r++ {
		// Alternate which goes first: the disk is still busy (discards,
		// journal) after a large removal, which slows whatever comes next.
		first, second := scrub, floor
		if r%2 == 1 {
			first, second = floor, scrub
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	return os.RemoveAll(vol)
}

func benchNFS(t tree, exportDir, server, share string, rounds int, res *Result) error {
	if exportDir == "" {
		return fmt.Errorf("-backend nfs needs -export-dir")
	}
	res.Floor, res.Directory = "go-nfs-client Target.RemoveAll of the same tree (userspace NFSv3, one connection)", exportDir
	pool := nfs.NewPool(nfs.Options{})
	defer pool.Close()
	d, err := driver.New(driver.Options{Name: "csi.stowage.io", Version: "bench", Backends: []backend.Backend{nfs.NewBackend(pool, nil)}})
	if err != nil {
		return err
	}
	ctx := context.Background()
	target, closeTarget, err := rawTarget(server, share)
	if err != nil {
		return err
	}
	defer closeTarget()
	for r := 0; r < rounds; r++ {
		// Fresh names every round: the tree is built behind the server's
		// back (locally, which is fast), and NFS-Ganesha would answer a
		// reused name from its cache with a stale handle.
		base := fmt.Sprintf("stowage-bench-scrub-%d-%d-%d", os.Getpid(), time.Now().Unix(), r)
		id := volumeid.ID{Backend: volumeid.NFS, Server: server, Share: share, Dir: base + "/pvc-scrub"}
		vol := filepath.Join(exportDir, id.Dir)
		floorRel := base + "/floor-tree"
		floorDir := filepath.Join(exportDir, floorRel)
		if err := os.MkdirAll(vol, 0o777); err != nil {
			return err
		}
		if err := t.build(vol); err != nil {
			return err
		}
		s, err := timed(func() error { return d.ScrubVolume(ctx, id.String(), "") })
		if err != nil {
			return err
		}
		if err := empty(vol); err != nil {
			return err
		}
		res.ScrubS = append(res.ScrubS, s)

		if err := os.MkdirAll(floorDir, 0o777); err != nil {
			return err
		}
		if err := t.build(floorDir); err != nil {
			return err
		}
		f, err := timed(func() error { return target.RemoveAll(floorRel) })
		if err != nil {
			return err
		}
		if _, err := os.Stat(floorDir); !os.IsNotExist(err) {
			return fmt.Errorf("the client's RemoveAll left %s behind (%v)", floorDir, err)
		}
		res.FloorS = append(res.FloorS, f)
		if err := target.RemoveAll(base); err != nil {
			return fmt.Errorf("remove %s: %w", base, err)
		}
	}
	return nil
}

// rawTarget connects the userspace client the plain way: MOUNT v3 for the
// root handle, then an NFSv3 target on its own connection.
func rawTarget(server, share string) (*gonfs.Target, func(), error) {
	auth := rpc.NewAuthUnix("stowage-bench", 0, 0).Auth()
	mc, err := gonfs.DialServiceAtPort(server, mountPort)
	if err != nil {
		return nil, nil, fmt.Errorf("dial MOUNT %s:%d: %w", server, mountPort, err)
	}
	defer mc.Close()
	type args struct {
		rpc.Header
		Dirpath string
	}
	res, err := mc.Call(&args{rpc.Header{Rpcvers: 2, Prog: gonfs.MountProg, Vers: gonfs.MountVers,
		Proc: gonfs.MountProc3MNT, Cred: auth, Verf: rpc.AuthNull}, share})
	if err != nil {
		return nil, nil, fmt.Errorf("MNT %s: %w", share, err)
	}
	if st, err := xdr.ReadUint32(res); err != nil || st != gonfs.MNT3Ok {
		return nil, nil, fmt.Errorf("MNT %s: status %d, %v", share, st, err)
	}
	fh, err := xdr.ReadOpaque(res)
	if err != nil {
		return nil, nil, err
	}
	nc, err := gonfs.DialServiceAtPort(server, nfsPort)
	if err != nil {
		return nil, nil, fmt.Errorf("dial NFS %s:%d: %w", server, nfsPort, err)
	}
	t, err := gonfs.NewTargetWithClient(nc, auth, fh, share, 0)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return t, func() { nc.Close() }, nil
}
