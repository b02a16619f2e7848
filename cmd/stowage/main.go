// Command stowage is the Stowage CSI driver: `stowage controller` runs the
// controller Deployment (NFS volumes, provisioning, recycling) and
// `stowage node` the node DaemonSet (mounts, and local volumes of its node).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: stowage controller|node [flags]
       stowage version

Run "stowage controller -h" or "stowage node -h" for the flags of each mode.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var cfg config
	switch os.Args[1] {
	case "controller":
		cfg.mode = modeController
	case "node":
		cfg.mode = modeNode
	case "version", "--version", "-version":
		fmt.Println(version)
		return
	default:
		fmt.Fprintf(os.Stderr, "stowage: unknown mode %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	fs := flag.NewFlagSet("stowage "+os.Args[1], flag.ContinueOnError)
	cfg.bind(fs)
	klog.InitFlags(fs)
	if err := fs.Parse(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintf(os.Stderr, "stowage: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		klog.ErrorS(err, "Stowage stopped")
		klog.Flush()
		fmt.Fprintf(os.Stderr, "stowage: %v\n", err)
		os.Exit(1)
	}
	klog.Flush()
}

// serveHealth answers /healthz (and whatever else is put on mux, such as
// /metrics) until ctx is done.
func serveHealth(ctx context.Context, addr string, mux *http.ServeMux, ready func() error) error {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.InfoS("Serving health", "address", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health endpoint %s: %w", addr, err)
	}
	return nil
}
