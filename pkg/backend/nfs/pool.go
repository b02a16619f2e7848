package nfs

import (
	"context"
	"fmt"
	"sync"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// endpoint is one (server, share) and its current connection, dialled on
// first use and again whenever the previous one broke.
type endpoint struct {
	server, share, loc string
	opts               Options
	dialSlot           chan struct{} // one dial at a time; others wait for its result

	mu     sync.Mutex
	c      *conn
	closed bool
}

func newEndpoint(server, share string, o Options) (*endpoint, error) {
	if err := volumeid.ValidateServer(server); err != nil {
		return nil, err
	}
	if err := volumeid.ValidateShare(share); err != nil {
		return nil, err
	}
	return &endpoint{
		server: server, share: share, loc: server + ":" + share,
		opts: o.withDefaults(), dialSlot: make(chan struct{}, 1),
	}, nil
}

func (e *endpoint) current() (*conn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("%s: %w", e.loc, errClosed)
	}
	if e.c != nil && !e.c.isBroken() {
		return e.c, nil
	}
	return nil, nil
}

// get returns a live connection, dialling one if there is none.
func (e *endpoint) get(ctx context.Context) (*conn, error) {
	if c, err := e.current(); c != nil || err != nil {
		return c, err
	}
	select {
	case e.dialSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to connect to %s: %w", e.loc, ctx.Err())
	}
	defer func() { <-e.dialSlot }()
	if c, err := e.current(); c != nil || err != nil {
		return c, err // dialled by someone else while we waited
	}
	c, err := dial(ctx, e.server, e.share, e.opts)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		c.close()
		return nil, fmt.Errorf("%s: %w", e.loc, errClosed)
	}
	e.c = c
	return c, nil
}

func (e *endpoint) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.c != nil {
		e.c.close()
	}
}

// Pool hands out Stores that share one connection per (server, share). It is
// safe for concurrent use; a broken connection is replaced on next use.
type Pool struct {
	opts Options

	mu        sync.Mutex
	endpoints map[[2]string]*endpoint
	closed    bool
}

// NewPool returns an empty Pool whose connections use o.
func NewPool(o Options) *Pool {
	return &Pool{opts: o, endpoints: map[[2]string]*endpoint{}}
}

// Get returns a Store for share on server, connecting first if the pool has
// no live connection to it, so that a wrong server or share fails here. The
// Store's Close does nothing: the pool owns the connection.
func (p *Pool) Get(ctx context.Context, server, share string) (backend.Store, error) {
	key := [2]string{server, share}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	ep, ok := p.endpoints[key]
	if !ok {
		var err error
		if ep, err = newEndpoint(server, share, p.opts); err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.endpoints[key] = ep
	}
	p.mu.Unlock()
	if _, err := ep.get(ctx); err != nil {
		return nil, err
	}
	return &store{ep: ep, pooled: true}, nil
}

// Close closes every connection; Stores from the pool fail afterwards.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, ep := range p.endpoints {
		ep.close()
	}
	return nil
}
