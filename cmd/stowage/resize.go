package main

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/provisioner"
	"github.com/stowage-csi/stowage/pkg/resizer"
	"github.com/stowage-csi/stowage/pkg/volumeid"
)

// resizeCompanion runs the resizer beside the provisioner, so that a volume
// is grown by the instance that made it: the node plugin its node's local
// volumes (only it can raise their quota), the elected controller the NFS
// ones.
func resizeCompanion(cfg config, client kubernetes.Interface, d *driver.Driver) provisioner.Companion {
	return func(_ context.Context, factory informers.SharedInformerFactory, events record.EventRecorder) (func(context.Context), error) {
		r, err := resizer.New(resizer.Config{
			DriverName: cfg.driverName,
			Expander:   d,
			Client:     client,
			Owns:       ownsVolume(cfg.mode, cfg.nodeID),
			Recorder:   events,
		}, factory)
		if err != nil {
			return nil, err
		}
		return r.Run, nil
	}
}

// ownsVolume splits volumes between instances as the provisioner does: a
// node takes its own local volumes, the controller everything else
// (handles it cannot read included, so that their error is told once).
func ownsVolume(m mode, node string) func(*v1.PersistentVolume) bool {
	return func(pv *v1.PersistentVolume) bool {
		if pv.Spec.CSI == nil {
			return false
		}
		id, err := volumeid.Parse(pv.Spec.CSI.VolumeHandle)
		if m == modeNode {
			return err == nil && id.Backend == volumeid.Local && id.Node == node
		}
		return err != nil || id.Backend != volumeid.Local
	}
}
