package driver

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/metrics"
)

// Listen opens the CSI endpoint, a unix socket given as unix:///path,
// unix://path or a bare path. A stale socket from a previous run is removed.
func Listen(endpoint string) (net.Listener, error) {
	path, err := SocketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create the directory of endpoint %s: %w", endpoint, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", endpoint, err)
	}
	return l, nil
}

// SocketPath extracts the file path from a unix endpoint.
func SocketPath(endpoint string) (string, error) {
	if strings.HasPrefix(endpoint, "unix:") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return "", fmt.Errorf("endpoint %q is not a valid URL: %w", endpoint, err)
		}
		p := u.Path
		if u.Host != "" { // unix://relative/path
			p = u.Host + p
		}
		if p == "" {
			return "", fmt.Errorf("endpoint %q names no socket path", endpoint)
		}
		return p, nil
	}
	if strings.Contains(endpoint, "://") {
		return "", fmt.Errorf("endpoint %q: only unix sockets are supported (unix:///path/csi.sock)", endpoint)
	}
	if endpoint == "" {
		return "", fmt.Errorf("endpoint is empty; pass --endpoint=unix:///path/csi.sock")
	}
	return endpoint, nil
}

// NewServer registers the services this instance serves on a gRPC server
// that logs and measures every call.
func NewServer(d *Driver) *grpc.Server {
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(metrics.Interceptor, logCalls),
		// Reused goroutines keep their grown stacks: a fresh goroutine per
		// call spent a quarter of CreateVolume+DeleteVolume growing its stack
		// (docs/benchmarks.md). More calls at once than workers still each
		// get their own goroutine.
		grpc.NumStreamWorkers(uint32(4*runtime.NumCPU())))
	csi.RegisterIdentityServer(s, d)
	csi.RegisterControllerServer(s, d)
	if d.isNode() {
		csi.RegisterNodeServer(s, d)
	}
	return s
}

// Serve serves the driver on l until ctx is done.
func Serve(ctx context.Context, l net.Listener, d *Driver) error {
	s := NewServer(d)
	go func() {
		<-ctx.Done()
		s.GracefulStop()
	}()
	klog.InfoS("Serving CSI", "endpoint", l.Addr().String(), "driver", d.opts.Name, "node", d.opts.NodeID)
	return s.Serve(l)
}

func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	// Requests carry secrets (CreateVolume, NodePublishVolume, ...);
	// the sanitizer prints them as ***stripped***.
	klog.V(5).InfoS("CSI call", "method", info.FullMethod, "request", protosanitizer.StripSecrets(req))
	resp, err := handler(ctx, req)
	if err != nil {
		st := status.Convert(err)
		klog.V(2).InfoS("CSI call failed", "method", info.FullMethod, "code", st.Code(), "message", st.Message(), "duration", time.Since(start))
	} else {
		klog.V(4).InfoS("CSI call done", "method", info.FullMethod, "duration", time.Since(start))
	}
	return resp, err
}
