package nfs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stowage-csi/stowage/pkg/backend"
)

// The copy benchmarks move the same bytes two ways in one run, because
// this machine is shared and absolute figures are noisy:
//
//   - BenchmarkCopyTree*: CopyTree of a tree into an empty directory.
//   - BenchmarkCopyFloor*: the floor under it, the userspace client's plain
//     sequential READ + WRITE of the same bytes on one connection, by
//     handle, in the same transfer size, with one COMMIT: no walk, no
//     attributes, nothing in parallel.
//
// Trees: "files" is STOWAGE_BENCH_COPY_MB MiB (default 256) in
// STOWAGE_BENCH_COPY_FILES files (default 1024) over 16 directories; "one"
// is one file of the same size. STOWAGE_BENCH_COPY_CONNS=1,4,8 runs with
// that many data connections, STOWAGE_BENCH_COPY_FINISHERS=N with N
// finishing ones (test/bench/snapshot/nfs.sh).

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type benchTree struct {
	name         string
	files, bytes int
	paths        []string // the files, relative to the share
}

func benchTrees() []benchTree {
	mb := benchEnvInt("STOWAGE_BENCH_COPY_MB", 256)
	n := benchEnvInt("STOWAGE_BENCH_COPY_FILES", 1024)
	return []benchTree{{name: "files", files: n, bytes: mb << 20}, {name: "one", files: 1, bytes: mb << 20}}
}

// plant writes t under base/src (server side) with random data.
func (t *benchTree) plant(b *testing.B, srv testServer, base string) {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{1})
	size := t.bytes / t.files
	buf := make([]byte, size)
	for i := range t.files {
		rel := fmt.Sprintf("%s/src/d%02d/f%05d", base, i%16, i)
		if t.files == 1 {
			rel = base + "/src/big"
		}
		_, _ = rng.Read(buf)
		if err := os.MkdirAll(filepath.Dir(srv.local(rel)), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(srv.local(rel), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		t.paths = append(t.paths, rel)
	}
	t.bytes = size * t.files
}

func benchConns() []int {
	var ns []int
	for _, f := range strings.Split(os.Getenv("STOWAGE_BENCH_COPY_CONNS"), ",") {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		ns = []int{copyDataConns}
	}
	return ns
}

func BenchmarkCopyTree(b *testing.B) {
	srv := needServer(b)
	st := srv.open(b)
	ctx := context.Background()
	for _, tree := range benchTrees() {
		b.Run(tree.name, func(b *testing.B) {
			base := srv.base(b)
			tree.plant(b, srv, base)
			for _, conns := range benchConns() {
				b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
					defer func(d, f int) { copyDataConns, copyFinishConns = d, f }(copyDataConns, copyFinishConns)
					copyDataConns = conns
					copyFinishConns = benchEnvInt("STOWAGE_BENCH_COPY_FINISHERS", copyFinishConns)
					b.SetBytes(int64(tree.bytes))
					for i := 0; b.Loop(); i++ {
						dst := fmt.Sprintf("%s/dst-%d-%d", base, conns, i)
						b.StopTimer()
						if err := os.Mkdir(srv.local(dst), 0o755); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
						res, err := st.(backend.Copier).CopyTree(ctx, base+"/src", dst)
						if err != nil {
							b.Fatal(err)
						}
						b.StopTimer()
						if res.Bytes != int64(tree.bytes) {
							b.Fatalf("copied %d bytes, want %d", res.Bytes, tree.bytes)
						}
						if err := os.RemoveAll(srv.local(dst)); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
				})
			}
		})
	}
}

func BenchmarkCopyFloor(b *testing.B) {
	srv := needServer(b)
	ctx := context.Background()
	for _, tree := range benchTrees() {
		b.Run(tree.name, func(b *testing.B) {
			base := srv.base(b)
			tree.plant(b, srv, base)
			srv.mustWrite(b, base+"/floor", "")
			c, err := dial(ctx, srv.server, srv.share, Options{}.withDefaults())
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			var handles [][]byte
			var dst []byte
			var chunk int
			err = c.do(ctx, func(p procs) error {
				for _, rel := range append(tree.paths, base+"/floor") {
					_, fh, err := walk(p, c.root, rel)
					if err != nil {
						return err
					}
					handles = append(handles, fh)
				}
				handles, dst = handles[:len(handles)-1], handles[len(handles)-1]
				info, err := p.fsinfo(c.root)
				chunk = transferSize(info)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, chunk)
			b.SetBytes(int64(tree.bytes))
			for b.Loop() {
				var out uint64
				for _, fh := range handles {
					for off := uint64(0); ; {
						var n int
						var eof bool
						err := c.do(ctx, func(p procs) error {
							var rerr error
							if n, eof, rerr = p.readInto(fh, off, buf); rerr != nil || n == 0 {
								return rerr
							}
							_, _, rerr = p.writeUnstable(dst, out, buf[:n])
							return rerr
						})
						if err != nil {
							b.Fatal(err)
						}
						off, out = off+uint64(n), out+uint64(n)
						if eof || n == 0 {
							break
						}
					}
				}
				if err := c.do(ctx, func(p procs) error { _, err := p.commit(dst); return err }); err != nil {
					b.Fatal(err)
				}
				if out != uint64(tree.bytes) {
					b.Fatalf("moved %d bytes, want %d", out, tree.bytes)
				}
			}
		})
	}
}
