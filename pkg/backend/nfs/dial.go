package nfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
	"k8s.io/klog/v2"
)

// Well-known ports tried when the server's portmapper does not answer.
const (
	defaultNFSPort   = 2049
	defaultMountPort = 20048
)

// Options tune how a share is reached. The zero value is what production uses.
type Options struct {
	// NFSPort and MountPort, when set, skip the portmapper. MountPort 0 with
	// NFSPort set means "MOUNT on the NFS port, else 20048".
	NFSPort, MountPort int
	// UID and GID are the AUTH_SYS identity of every call (default root).
	UID, GID uint32
	// CallTimeout bounds each NFS procedure whose context has no deadline
	// (default 30 s). DialTimeout bounds connecting and mounting (default 10 s).
	CallTimeout, DialTimeout time.Duration

	// For tests: where the portmapper listens, and how long a procedure may
	// outlive its deadline before its connection counts as stuck.
	portmapperPort int
	stuckAfter     time.Duration
}

func (o Options) withDefaults() Options {
	if o.CallTimeout <= 0 {
		o.CallTimeout = 30 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.portmapperPort == 0 {
		o.portmapperPort = rpc.PmapPort
	}
	if o.stuckAfter <= 0 {
		// The library itself would resend a lost call for up to 100 × 5 s.
		o.stuckAfter = 5 * time.Second
	}
	return o
}

// await runs f, which cannot be cancelled, and gives up when ctx ends; a
// result that arrives after that is handed to discard.
func await[T any](ctx context.Context, f func() (T, error), discard func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r.err = &transportError{fmt.Errorf("NFS client panicked: %v", p)}
			}
			ch <- r
		}()
		r.v, r.err = f()
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil && discard != nil {
				discard(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}

// dialPort connects to server:port. The library binds a random source port
// and gives up on EADDRINUSE unless it runs as root, so try a few times.
func dialPort(server string, port int) (*rpc.Client, error) {
	var err error
	for range 5 {
		var c *rpc.Client
		if c, err = gonfs.DialServiceAtPort(bracketIPv6(server), port); err == nil {
			return c, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, err
}

// bracketIPv6 lets an IPv6 literal survive the library's "%s:%d".
func bracketIPv6(server string) string {
	if strings.Contains(server, ":") && !strings.HasPrefix(server, "[") {
		return "[" + server + "]"
	}
	return server
}

// ports asks the portmapper where MOUNT v3 and NFS v3 listen on TCP. A port
// of 0 means the portmapper does not list the program.
func ports(server string, portmapperPort int) (mountPort, nfsPort int, err error) {
	c, err := rpc.DialTCP("tcp", net.JoinHostPort(server, strconv.Itoa(portmapperPort)), false)
	if err != nil {
		return 0, 0, err
	}
	pm := &rpc.Portmapper{Client: c}
	defer pm.Close()
	if mountPort, err = pm.Getport(rpc.Mapping{Prog: gonfs.MountProg, Vers: gonfs.MountVers, Prot: rpc.IPProtoTCP}); err != nil {
		return 0, 0, err
	}
	if nfsPort, err = pm.Getport(rpc.Mapping{Prog: gonfs.Nfs3Prog, Vers: gonfs.Nfs3Vers, Prot: rpc.IPProtoTCP}); err != nil {
		return 0, 0, err
	}
	return mountPort, nfsPort, nil
}

// mnt asks MOUNT v3 over c for the root handle of share.
func mnt(c *rpc.Client, share string, auth rpc.Auth) ([]byte, error) {
	type args struct {
		rpc.Header
		Dirpath string
	}
	res, err := c.Call(&args{rpc.Header{
		Rpcvers: 2, Prog: gonfs.MountProg, Vers: gonfs.MountVers, Proc: gonfs.MountProc3MNT,
		Cred: auth, Verf: rpc.AuthNull,
	}, share})
	if err != nil {
		return nil, fromLibrary(err)
	}
	status, err := xdr.ReadUint32(res)
	if err != nil {
		return nil, &transportError{fmt.Errorf("read MOUNT status: %w", err)}
	}
	if status != gonfs.MNT3Ok {
		return nil, &mountError{status}
	}
	fh, err := xdr.ReadOpaque(res)
	if err != nil {
		return nil, &transportError{fmt.Errorf("read MOUNT file handle: %w", err)}
	}
	return fh, nil
}

// isProgUnavailable reports an RPC refusal of the program on this port.
func isProgUnavailable(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "PROG_UNAVAIL") || strings.Contains(err.Error(), "PROG_MISMATCH"))
}

// dial connects to server, mounts share and returns a ready connection, or
// gives up after Options.DialTimeout. The library takes no context and must
// not have a client closed under a call in flight (its reply dispatcher can
// then close a channel twice and panic), so the whole sequence runs as one
// unit that, when abandoned, finishes and cleans up on its own.
func dial(ctx context.Context, server, share string, o Options) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	c, err := await(ctx, func() (*conn, error) { return dialSync(server, share, o) }, (*conn).close)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil, unreachable(server, fmt.Errorf("no answer (dial timeout %s): %w", o.DialTimeout, err))
	}
	return c, err
}

func dialSync(server, share string, o Options) (*conn, error) {
	loc := server + ":" + share
	mountPort, nfsPort := o.MountPort, o.NFSPort
	if nfsPort == 0 {
		mp, np, err := ports(server, o.portmapperPort)
		switch {
		case err != nil:
			// No portmapper (an NFSv4-style server, or rpcbind not running):
			// try the well-known ports before giving up.
			klog.V(2).InfoS("NFS portmapper did not answer; trying well-known ports", "server", server, "err", err)
			nfsPort = defaultNFSPort
		case np == 0:
			return nil, fmt.Errorf("NFS server %s does not offer NFSv3 over TCP (its portmapper lists no NFS v3 program); Stowage's controller needs NFSv3 on the server", server)
		default:
			nfsPort = np
			if mountPort == 0 {
				mountPort = mp
			}
		}
	}

	nc, err := dialPort(server, nfsPort)
	if err != nil {
		return nil, unreachable(server, err)
	}
	auth := rpc.NewAuthUnix(hostname(), o.UID, o.GID).Auth()
	fh, err := mountRoot(server, share, nc, mountPort, nfsPort, auth)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t, err := gonfs.NewTargetWithClient(nc, auth, fh, share, 0)
	if err != nil {
		nc.Close()
		if isProgUnavailable(err) {
			return nil, fmt.Errorf("NFS server %s does not speak NFSv3 on port %d (%w); Stowage's controller needs NFSv3 on the server", server, nfsPort, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", loc, err)
	}
	klog.V(2).InfoS("Connected to NFS share", "server", server, "share", share, "nfsPort", nfsPort, "mountPort", mountPort)
	return newConn(loc, t, procs{t: t, auth: auth}, fh, o), nil
}

// mountRoot gets the share's root handle: from MOUNT at mountPort, or, when
// that is unknown, on the NFS connection itself and then at 20048.
func mountRoot(server, share string, nc *rpc.Client, mountPort, nfsPort int, auth rpc.Auth) ([]byte, error) {
	try := func(port int) ([]byte, error) {
		if port == nfsPort {
			return mnt(nc, share, auth)
		}
		mc, err := dialPort(server, port)
		if err != nil {
			return nil, unreachable(server, fmt.Errorf("MOUNT service at port %d: %w", port, err))
		}
		defer mc.Close()
		return mnt(mc, share, auth)
	}
	var fh []byte
	var err error
	if mountPort != 0 {
		fh, err = try(mountPort)
	} else if fh, err = try(nfsPort); isProgUnavailable(err) {
		fh, err = try(defaultMountPort)
	}
	switch {
	case err == nil:
		return fh, nil
	case isProgUnavailable(err):
		return nil, fmt.Errorf("NFS server %s offers no MOUNT v3 service where Stowage looked (%w); NFSv4-only servers are not supported by the controller: enable NFSv3 or set the mount port", server, err)
	}
	var me *mountError
	if errors.As(err, &me) {
		return nil, mountRefused(server, share, err)
	}
	return nil, fmt.Errorf("mount %s:%s: %w", server, share, err)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "stowage"
	}
	if len(h) > 255 {
		h = h[:255]
	}
	return h
}
