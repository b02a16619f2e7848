package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	mount "k8s.io/mount-utils"

	"github.com/stowage-csi/stowage/pkg/backend"
	"github.com/stowage-csi/stowage/pkg/backend/local"
	"github.com/stowage-csi/stowage/pkg/backend/nfs"
	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/registration"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// run wires the pieces of one mode together and runs them until ctx is done
// or one of them fails.
func run(ctx context.Context, cfg config) error {
	klog.InfoS("Starting Stowage", "mode", cfg.mode, "version", version, "driver", cfg.driverName)
	opts := driver.Options{Name: cfg.driverName, Version: version}
	backends, err := openBackends(cfg)
	if err != nil {
		return err
	}
	opts.Backends = backends
	if cfg.mode == modeNode {
		opts.NodeID = cfg.nodeID
		opts.Mounter = mount.New("")
	}

	var client kubernetes.Interface
	if cfg.provisioner || cfg.kubeconfig != "" {
		c, err := kubeClient(cfg)
		if err != nil {
			return err
		}
		client = c
		if cfg.mode == modeController {
			opts.NodeExists = nodeExists(client)
		}
	}
	if cfg.mode == modeNode {
		// NodePublishVolume reads the claim of a volume made for
		// ReadOnlyMany and other modes, provisioner or not.
		if client == nil {
			if c, err := kubeClient(cfg); err != nil {
				klog.ErrorS(err, "No Kubernetes API: a volume made for ReadOnlyMany and other modes will be mounted in the mode kubelet passes, not its claim's")
			} else {
				client = c
			}
		}
		if client != nil {
			opts.ClaimAccessModes = driver.ClaimLookup(client)
		}
	}

	d, err := driver.New(opts)
	if err != nil {
		return err
	}
	listener, err := driver.Listen(cfg.endpoint)
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return driver.Serve(ctx, listener, d) })
	mux := http.NewServeMux()
	serveMetricsAlone(cfg, mux)
	if cfg.mode == modeNode && cfg.registrationDir != "" {
		g.Go(func() error {
			return registration.Serve(ctx, cfg.registrationDir, cfg.driverName, cfg.pluginEndpoint)
		})
	}
	if cfg.provisioner {
		g.Go(func() error { return runProvisioner(ctx, cfg, client, d, mux) })
	}
	if cfg.healthAddr != "" {
		g.Go(func() error { return serveHealth(ctx, cfg.healthAddr, mux, d.Ready) })
	}
	return g.Wait()
}

func kubeClient(cfg config) (kubernetes.Interface, error) {
	rc, err := kubeConfig(cfg)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}

// kubeConfig is the API client configuration every client of the process
// shares (the Kubernetes one, the snapshot one).
func kubeConfig(cfg config) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if cfg.kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w (pass --kubeconfig, or --provisioner=false to run without the API)", err)
	}
	// Bulk provisioning makes several API calls per claim; client-go's
	// defaults (5 qps, burst 10) would make Stowage the bottleneck.
	rc.QPS = float32(cfg.qps)
	rc.Burst = cfg.burst
	rc.UserAgent = "stowage/" + version
	// The API server warns on every write of a Recycle PV that the policy is
	// deprecated; once is enough.
	rc.WarningHandler = rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true})
	return rc, nil
}

// openBackends opens the kinds of storage this mode serves: NFS everywhere
// (the controller makes volumes, node plugins mount them and count their
// usage), local disk on nodes with a base path.
func openBackends(cfg config) ([]backend.Backend, error) {
	var mounter mount.Interface
	if cfg.mode == modeNode {
		mounter = mount.New("")
	}
	backends := []backend.Backend{nfs.NewBackend(nfs.NewPool(nfs.Options{}), mounter)}
	if cfg.mode != modeNode {
		return append(backends, local.NewBackend("", nil, nil)), nil
	}
	var store *local.Store
	var quota *local.Quota
	if cfg.localBasePath != "" {
		if err := os.MkdirAll(cfg.localBasePath, 0o711); err != nil {
			return nil, fmt.Errorf("create local base path: %w", err)
		}
		s, err := local.Open(cfg.localBasePath)
		if err != nil {
			return nil, err
		}
		store = s
		if q, err := local.NewQuota(store); err != nil {
			klog.ErrorS(err, "Local volume sizes will not be enforced; see pkg/backend/local/QUOTA.md")
		} else {
			quota = q
		}
	}
	return append(backends, local.NewBackend(cfg.nodeID, store, quota)), nil
}

// nodeExists lets ControllerPublishVolume tell a missing node from a real one.
func nodeExists(client kubernetes.Interface) driver.NodeChecker {
	return func(ctx context.Context, name string) (bool, error) {
		_, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
}

// backendOf says which claims this mode provisions.
func backendOf(m mode) string {
	if m == modeNode {
		return volumeid.Local
	}
	return volumeid.NFS
}
