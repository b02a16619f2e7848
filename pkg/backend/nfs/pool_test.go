package nfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// liveConn is the pool's current connection to (server, share), if any.
func (p *Pool) liveConn(server, share string) *conn {
	p.mu.Lock()
	ep := p.endpoints[[2]string{server, share}]
	p.mu.Unlock()
	if ep == nil {
		return nil
	}
	c, _ := ep.current()
	return c
}

func TestPoolConcurrentUse(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	base := srv.base(t)
	t.Cleanup(func() { os.RemoveAll(srv.local(recordDir + "/" + base)) })
	pool := NewPool(Options{})
	defer pool.Close()

	first, err := pool.Get(ctx, srv.server, srv.share)
	if err != nil {
		t.Fatal(err)
	}
	c := pool.liveConn(srv.server, srv.share)

	const workers, rounds = 16, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				// As the controller does: a Store per request.
				st, err := pool.Get(ctx, srv.server, srv.share)
				if err != nil {
					errs <- err
					return
				}
				dir := fmt.Sprintf("%s/w%d/r%d/vol", base, w, r)
				record := strings.ReplaceAll(fmt.Sprintf("%s-w%d-r%d", base, w, r), "/", "-") // one path element
				steps := []func() error{
					func() error { return st.Mkdir(ctx, dir, 0o755) },
					func() error { return st.WriteRecord(ctx, record, []byte(dir)) },
					func() error {
						b, err := st.ReadRecord(ctx, record)
						if err == nil && string(b) != dir {
							err = fmt.Errorf("record %s holds %q, want %q", record, b, dir)
						}
						return err
					},
					func() error {
						ok, err := st.Exists(ctx, dir)
						if err == nil && !ok {
							err = fmt.Errorf("%s does not exist after Mkdir", dir)
						}
						return err
					},
					func() error { return st.RemoveRecord(ctx, record) },
					func() error { return st.RemoveAll(ctx, fmt.Sprintf("%s/w%d/r%d", base, w, r)) },
					st.Close, // a pooled Store's Close must not close the shared connection
				}
				for _, step := range steps {
					if err := step(); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		if entries, _ := os.ReadDir(srv.local(fmt.Sprintf("%s/w%d", base, w))); len(entries) != 0 {
			t.Errorf("w%d still holds %d entries", w, len(entries))
		}
	}
	if now := pool.liveConn(srv.server, srv.share); now != c {
		t.Errorf("the pool dialled again under concurrent use; want one connection reused")
	}
	if ok, err := first.Exists(ctx, base); err != nil || !ok {
		t.Errorf("the first Store stopped working: %v, %v", ok, err)
	}
	// Another share is another connection.
	if _, err := pool.Get(ctx, srv.server, "/readonly"); err == nil {
		if pool.liveConn(srv.server, "/readonly") == c {
			t.Errorf("two shares share one connection")
		}
	}
}

func TestPoolReconnects(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	base := srv.base(t)
	px := startProxy(t, net.JoinHostPort(srv.server, "2049"))
	mountPx := startProxy(t, net.JoinHostPort(srv.server, "20048"))
	const stuckAfter = 200 * time.Millisecond
	pool := NewPool(Options{
		NFSPort: px.port(), MountPort: mountPx.port(),
		CallTimeout: 2 * time.Second, stuckAfter: stuckAfter,
	})
	defer pool.Close()
	st, err := pool.Get(ctx, "127.0.0.1", srv.share)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Mkdir(ctx, base+"/before", 0o755); err != nil {
		t.Fatal(err)
	}

	// The server drops every connection (a restart).
	px.cut()
	if err := st.Mkdir(ctx, base+"/after-cut", 0o755); err != nil {
		t.Errorf("Mkdir after the connection was cut: %v", err)
	}

	// The server stops answering: the call times out, and the connection
	// is replaced once the server is back.
	old := pool.liveConn("127.0.0.1", srv.share)
	px.setFrozen(true)
	start := time.Now()
	short, cancel := context.WithTimeout(ctx, time.Second)
	_, err = st.Exists(short, base+"/before")
	cancel()
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("Exists against a hung server = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Exists against a hung server took %s, want about the 1 s deadline", d)
	}
	time.Sleep(2 * stuckAfter)
	px.setFrozen(false)
	accepted := px.accepted()
	ok, err := st.Exists(ctx, base+"/after-cut")
	if err != nil || !ok {
		t.Errorf("Exists after the server came back = %v, %v; want true", ok, err)
	}
	if pool.liveConn("127.0.0.1", srv.share) == old || px.accepted() == accepted {
		t.Errorf("the stuck connection was not replaced by a new one")
	}
	for _, d := range []string{"before", "after-cut"} {
		if !srv.exists(base + "/" + d) {
			t.Errorf("%s missing server-side", d)
		}
	}
}

func TestDialTimesOutOnSilentServer(t *testing.T) {
	needServer(t) // the silent server is local, but keep to the suite's contract
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept, never answer
		}
	}()
	start := time.Now()
	_, err = OpenWithOptions(testCtx(t), "127.0.0.1", "/export",
		Options{NFSPort: l.Addr().(*net.TCPAddr).Port, DialTimeout: time.Second})
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "cannot reach NFS server 127.0.0.1") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open against a silent server = %v, want cannot reach ... deadline exceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Open took %s, want about the 1 s dial timeout", d)
	}
}

func TestPortmapperFallback(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	// As if rpcbind were not running.
	st, err := OpenWithOptions(ctx, srv.server, srv.share, Options{portmapperPort: closedPort(t)})
	if err != nil {
		t.Fatalf("Open without a portmapper: %v", err)
	}
	defer st.Close()
	base := srv.base(t)
	if err := st.Mkdir(ctx, base+"/vol", 0o755); err != nil || !srv.exists(base+"/vol") {
		t.Errorf("Mkdir without a portmapper: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	srv := needServer(t)
	ctx := testCtx(t)
	st, err := Open(ctx, srv.server, srv.share)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.Exists(ctx, "x"); !errors.Is(err, errClosed) {
		t.Errorf("Exists on a closed Store = %v, want errClosed", err)
	}
	pool := NewPool(Options{})
	pool.Close()
	if _, err := pool.Get(ctx, srv.server, srv.share); !errors.Is(err, errClosed) {
		t.Errorf("Get on a closed Pool = %v, want errClosed", err)
	}
}
