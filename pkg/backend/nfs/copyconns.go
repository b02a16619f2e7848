package nfs

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// A copy needs several connections (a connection runs one procedure at a
// time; the library's client can panic if its connection breaks with
// several calls in flight, so calls are not pipelined on one). Dialling them
// afresh for every copy would leave each closed one in TIME_WAIT on a
// privileged source port for a minute, and a burst of snapshots would use
// up the ~1,000 ports that every NFS call of the process dials from. So the
// connections of a finished copy wait here, per endpoint, for the next copy,
// and are closed after copyConnIdle unused.

const copyConnIdle = 30 * time.Second

var copyConnCache = struct {
	mu   sync.Mutex
	idle map[*endpoint][]idleConn
}{idle: map[*endpoint][]idleConn{}}

type idleConn struct {
	c     *conn
	since time.Time
}

// takeCopyConns returns n live connections to ep's share: idle ones first,
// then new ones dialled in parallel.
func takeCopyConns(ctx context.Context, ep *endpoint, n int) ([]*conn, error) {
	conns := make([]*conn, 0, n)
	copyConnCache.mu.Lock()
	idle := copyConnCache.idle[ep]
	for len(idle) > 0 && len(conns) < n {
		ic := idle[len(idle)-1]
		idle = idle[:len(idle)-1]
		if ic.c.isBroken() {
			continue
		}
		conns = append(conns, ic.c)
	}
	copyConnCache.idle[ep] = idle
	copyConnCache.mu.Unlock()

	fresh := make([]*conn, n-len(conns))
	g, gctx := errgroup.WithContext(ctx)
	for i := range fresh {
		g.Go(func() error {
			var err error
			fresh[i], err = dial(gctx, ep.server, ep.share, ep.opts)
			return err
		})
	}
	err := g.Wait()
	for _, c := range fresh {
		if c != nil {
			conns = append(conns, c)
		}
	}
	if err != nil {
		putCopyConns(ep, conns)
		return nil, err
	}
	return conns, nil
}

// putCopyConns keeps the live conns of a finished copy for the next one,
// unless ep was closed meanwhile.
func putCopyConns(ep *endpoint, conns []*conn) {
	ep.mu.Lock()
	closed := ep.closed
	ep.mu.Unlock()
	now := time.Now()
	copyConnCache.mu.Lock()
	defer copyConnCache.mu.Unlock()
	for _, c := range conns {
		if c == nil || c.isBroken() {
			continue
		}
		if closed {
			c.close()
			continue
		}
		copyConnCache.idle[ep] = append(copyConnCache.idle[ep], idleConn{c, now})
	}
	time.AfterFunc(copyConnIdle, sweepCopyConns)
}

// sweepCopyConns closes connections idle for copyConnIdle or whose
// endpoint was closed.
func sweepCopyConns() {
	copyConnCache.mu.Lock()
	defer copyConnCache.mu.Unlock()
	for ep, idle := range copyConnCache.idle {
		ep.mu.Lock()
		closed := ep.closed
		ep.mu.Unlock()
		kept := idle[:0]
		for _, ic := range idle {
			if closed || ic.c.isBroken() || time.Since(ic.since) >= copyConnIdle {
				ic.c.close()
				continue
			}
			kept = append(kept, ic)
		}
		if len(kept) == 0 {
			delete(copyConnCache.idle, ep)
		} else {
			copyConnCache.idle[ep] = kept
		}
	}
}
