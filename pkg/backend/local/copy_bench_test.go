package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The tree of docs/benchmarks.md's snapshot rows: 1 GiB in 10,000 files,
// 100 directories of 100.
const (
	benchDirs, benchFilesPerDir = 100, 100
	benchFileSize               = (1 << 30) / (benchDirs * benchFilesPerDir)
)

// BenchmarkCopyTree copies that tree on the default temporary directory's
// filesystem and on a loop-mounted XFS with reflink; each round ends with
// a syncfs, so that what is timed is on the disk, as for the tools that
// test/bench/snapshot/local.sh times against it. With STOWAGE_BENCH_DIR set
// it runs only there, as BenchmarkCopyTree/given, and leaves the source
// tree in $STOWAGE_BENCH_DIR/stowage-bench/vol for the script to time the
// tools on (made once, reused by later runs).
func BenchmarkCopyTree(b *testing.B) {
	if dir := os.Getenv("STOWAGE_BENCH_DIR"); dir != "" {
		b.Run("given", func(b *testing.B) { benchCopyTree(b, dir) })
		return
	}
	b.Run("default", func(b *testing.B) { benchCopyTree(b, b.TempDir()) })
	b.Run("xfs-reflink", func(b *testing.B) { benchCopyTree(b, loopMount(b, 4<<30, xfsReflink...)) })
}

func benchCopyTree(b *testing.B, dir string) {
	base := filepath.Join(dir, "stowage-bench")
	if err := os.MkdirAll(base, 0o755); err != nil {
		b.Fatal(err)
	}
	makeBenchTree(b, filepath.Join(base, "vol"))
	s, err := Open(base)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var res struct{ bytes int64 }
	for b.Loop() {
		b.StopTimer()
		if err := s.RemoveAll(ctx, "snap"); err != nil {
			b.Fatal(err)
		}
		if err := s.Mkdir(ctx, "snap", 0o755); err != nil {
			b.Fatal(err)
		}
		syncfs(b, base)
		b.StartTimer()
		r, err := s.CopyTree(ctx, "vol", "snap")
		if err != nil {
			b.Fatal(err)
		}
		syncfs(b, base)
		res.bytes = r.Bytes
		b.ReportMetric(boolMetric(r.Reflinked), "reflinked")
	}
	b.SetBytes(res.bytes)
	b.StopTimer()
	if err := s.RemoveAll(ctx, "snap"); err != nil {
		b.Fatal(err)
	}
}

func boolMetric(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

func syncfs(tb testing.TB, dir string) {
	f, err := os.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		tb.Fatal(err)
	}
}

// makeBenchTree makes the tree in vol unless an earlier run left it whole.
func makeBenchTree(tb testing.TB, vol string) {
	done := filepath.Join(vol, ".complete")
	if _, err := os.Stat(done); err == nil {
		return
	}
	if err := os.RemoveAll(vol); err != nil {
		tb.Fatal(err)
	}
	data := make([]byte, benchFileSize)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	for d := range benchDirs {
		dir := filepath.Join(vol, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for f := range benchFilesPerDir {
			copy(data, fmt.Sprintf("file %d/%d", d, f)) // no two alike
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), data, 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	syncfs(tb, vol)
}
