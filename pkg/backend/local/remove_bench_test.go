package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkScrub scrubs a volume of 10,000 small files in 10 directories of
// 1,000, the shape of docs/benchmarks.md's scrub row (without the large
// files, whose cost is the filesystem's). Set STOWAGE_BENCH_DIR to put the
// store on another filesystem than the test's temporary directory.
func BenchmarkScrub(b *testing.B) {
	base := b.TempDir()
	if d := os.Getenv("STOWAGE_BENCH_DIR"); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "bench"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(base) })
	}
	s, err := Open(base)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := make([]byte, 512)
	for b.Loop() {
		b.StopTimer()
		for d := range 10 {
			dir := filepath.Join(base, "vol", fmt.Sprintf("d%d", d))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			for f := range 1000 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), data, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		if err := s.Scrub(ctx, "vol"); err != nil {
			b.Fatal(err)
		}
	}
}
