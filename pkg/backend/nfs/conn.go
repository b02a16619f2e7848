package nfs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"k8s.io/klog/v2"
)

// conn is one mounted share over one TCP connection, used by one procedure
// at a time (see the package comment for why).
type conn struct {
	loc         string // server:share, for messages
	target      *gonfs.Target
	p           procs
	root        []byte // the share's root file handle
	callTimeout time.Duration
	stuckAfter  time.Duration // how long a call may outlive its deadline before c counts as stuck

	records recordsDirCache // the handle of .stowage (recordsdir.go)

	slot      chan struct{} // one-slot semaphore: held while a procedure runs
	broken    atomic.Bool
	retireOne sync.Once
}

func newConn(loc string, t *gonfs.Target, p procs, root []byte, o Options) *conn {
	return &conn{
		loc: loc, target: t, p: p, root: root,
		callTimeout: o.CallTimeout, stuckAfter: o.stuckAfter,
		slot: make(chan struct{}, 1),
	}
}

func (c *conn) isBroken() bool { return c.broken.Load() }

// do runs fn, which issues NFS procedures through c.p, alone on c and within
// ctx (or callTimeout when ctx has no deadline).
func (c *conn) do(ctx context.Context, fn func(p procs) error) error {
	if c.isBroken() {
		return &transportError{fmt.Errorf("connection to %s was closed", c.loc)}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.callTimeout)
		defer cancel()
	}
	select {
	case c.slot <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the connection to %s: %w", c.loc, ctx.Err())
	}
	if c.isBroken() {
		<-c.slot
		return &transportError{fmt.Errorf("connection to %s was closed", c.loc)}
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-c.slot }()
		defer func() {
			if r := recover(); r != nil {
				done <- &transportError{fmt.Errorf("NFS client panicked: %v", r)}
			}
		}()
		done <- fn(c.p)
	}()
	select {
	case err := <-done:
		if isTransport(err) {
			c.retire(err)
		}
		return err
	case <-ctx.Done():
		// The procedure cannot be cancelled. Let it finish in the
		// background, and give up on the connection only if it is stuck.
		go func() {
			select {
			case err := <-done:
				if isTransport(err) {
					c.retire(err)
				}
			case <-time.After(c.stuckAfter):
				c.retire(fmt.Errorf("a call did not finish %s after its deadline", c.stuckAfter))
			}
		}()
		return &transportError{fmt.Errorf("NFS server %s did not answer in time: %w", c.loc, ctx.Err())}
	}
}

// retire marks c unusable and closes it once no procedure runs on it: closing
// the library's client under a call in flight can make it panic.
func (c *conn) retire(why error) {
	c.broken.Store(true)
	c.retireOne.Do(func() {
		klog.InfoS("Retiring NFS connection; the next call reconnects", "share", c.loc, "reason", why.Error())
		go func() {
			c.slot <- struct{}{} // never released: nothing may use c again
			c.target.Close()
		}()
	})
}

// close retires c without logging it as a failure.
func (c *conn) close() {
	c.broken.Store(true)
	c.retireOne.Do(func() {
		go func() {
			c.slot <- struct{}{}
			c.target.Close()
		}()
	})
}
