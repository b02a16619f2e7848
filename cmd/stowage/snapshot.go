package main

import (
	"context"
	"strings"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/provisioner"
	"github.com/stowage-csi/stowage/pkg/snapshotter"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// snapshotAPI is the group version whose contents the snapshotter serves.
const snapshotAPI = "snapshot.storage.k8s.io/v1"

// snapshotCompanion runs the snapshotter beside the provisioner, so that a
// snapshot is cut by the instance that owns its volume: the node plugin its
// node's local volumes (their contents carry its node's managed-by label),
// the elected controller the NFS ones. The snapshot informers come from the
// snapshot client's own factory, started by the snapshotter; the provisioner's
// factory is not used. Without the snapshot CRDs it does nothing but say so.
func snapshotCompanion(cfg config, client snapclient.Interface, d *driver.Driver) provisioner.Companion {
	return func(ctx context.Context, _ informers.SharedInformerFactory, events record.EventRecorder) (func(context.Context), error) {
		if _, err := client.Discovery().ServerResourcesForGroupVersion(snapshotAPI); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, err
			}
			klog.FromContext(ctx).Info("No snapshot API in this cluster: snapshots are off until the snapshot CRDs are installed and Stowage restarted", "api", snapshotAPI)
			return func(context.Context) {}, nil
		}
		node := ""
		if cfg.mode == modeNode {
			node = cfg.nodeID
		}
		s, err := snapshotter.New(snapshotter.Config{
			DriverName: cfg.driverName,
			CSI:        d,
			Client:     client,
			Owns:       ownsSnapshotSource(cfg.mode, cfg.nodeID),
			Recorder:   events,
			NodeName:   node,
		})
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	}
}

// ownsSnapshotSource splits snapshots between instances as ownsVolume splits
// volumes: a node takes those of its own local volumes, the controller
// everything else (handles it cannot read included, so that their error is
// told once). The handle is a volume ID (a snapshot to cut) or a snapshot ID
// (a pre-provisioned snapshot).
func ownsSnapshotSource(m mode, node string) func(handle string) bool {
	return func(handle string) bool {
		backend, on, err := whereIs(handle)
		if m == modeNode {
			return err == nil && backend == volumeid.Local && on == node
		}
		return err != nil || backend != volumeid.Local
	}
}

// whereIs is the backend of a volume or snapshot ID, and its node if local.
func whereIs(handle string) (backend, node string, err error) {
	if strings.HasPrefix(handle, "snapshot#") {
		s, err := volumeid.ParseSnapshot(handle)
		return s.Backend, s.Node, err
	}
	id, err := volumeid.Parse(handle)
	return id.Backend, id.Node, err
}
