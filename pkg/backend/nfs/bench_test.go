package nfs

import (
	"fmt"
	"sync/atomic"
	"testing"
)

type atomicCounter struct{ v atomic.Int64 }

func (c *atomicCounter) next() int64 { return c.v.Add(1) }

// BenchmarkMkdirRmdir is one volume directory created and removed through
// the Store over the network, nothing else: the floor under what a CSI
// CreateVolume + DeleteVolume of an NFS volume can cost.
func BenchmarkMkdirRmdir(b *testing.B) {
	srv := needServer(b)
	st := srv.open(b)
	ctx := testCtx(b)
	base := srv.base(b)
	for i := 0; b.Loop(); i++ {
		dir := fmt.Sprintf("%s/pvc-%d", base, i)
		if err := st.Mkdir(ctx, dir, 0o777); err != nil {
			b.Fatal(err)
		}
		if err := st.RemoveAll(ctx, dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMkdirRmdirParallel is the same from many goroutines through one
// pooled connection, as concurrent CSI requests would run.
func BenchmarkMkdirRmdirParallel(b *testing.B) {
	srv := needServer(b)
	ctx := testCtx(b)
	base := srv.base(b)
	pool := NewPool(Options{})
	b.Cleanup(func() { pool.Close() })
	st, err := pool.Get(ctx, srv.server, srv.share)
	if err != nil {
		b.Fatal(err)
	}
	var n atomicCounter
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dir := fmt.Sprintf("%s/pvc-%d", base, n.next())
			if err := st.Mkdir(ctx, dir, 0o777); err != nil {
				b.Error(err)
				return
			}
			if err := st.RemoveAll(ctx, dir); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
