package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"k8s.io/client-go/kubernetes"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/provisioner"
)

// runProvisioner runs the StorageClass provisioner and the recycler of this
// mode: NFS claims in the controller (leader-elected), local claims of this
// node in the node plugin.
func runProvisioner(ctx context.Context, cfg config, client kubernetes.Interface, d *driver.Driver, mux *http.ServeMux) error {
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("leader election identity: %w", err)
		}
		identity = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	// Restores read VolumeSnapshots; without the CRDs a restore is refused
	// with the API server's answer, and nothing else needs them.
	rc, err := kubeConfig(cfg)
	if err != nil {
		return err
	}
	snapshots, err := snapclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("snapshot API client: %w", err)
	}
	return provisioner.Run(ctx, provisioner.Config{
		DriverName:              cfg.driverName,
		Controller:              d,
		Scrubber:                d,
		Backend:                 backendOf(cfg.mode),
		NodeName:                cfg.nodeID,
		Client:                  client,
		Snapshots:               snapshots,
		LeaderElection:          cfg.mode == modeController && cfg.leaderElect,
		LeaderElectionNamespace: cfg.leaderNamespace,
		Identity:                identity,
		Mux:                     mux,
		Companions:              companions(cfg, client, snapshots, d),
	})
}

// companions are the controllers that run beside the provisioner, each for
// the volumes this instance owns.
func companions(cfg config, client kubernetes.Interface, snapshots snapclient.Interface, d *driver.Driver) []provisioner.Companion {
	c := []provisioner.Companion{resizeCompanion(cfg, client, d), capacityCompanion(cfg, client, d), orphansCompanion(cfg, client, d), nodeLossCompanion(cfg, client)}
	if cfg.snapshots {
		c = append(c, snapshotCompanion(cfg, snapshots, d))
	}
	return append(c, metricsCompanions(cfg)...)
}
