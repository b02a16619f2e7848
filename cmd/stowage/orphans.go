package main

import (
	"context"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/orphans"
	"github.com/stowage-csi/stowage/pkg/provisioner"
)

// orphansCompanion runs the orphan reconciler beside the provisioner, in
// the instance that owns the storage: the node plugin looks at its own base
// path, the elected controller at the NFS shares of the driver's classes.
func orphansCompanion(cfg config, client kubernetes.Interface, d *driver.Driver) provisioner.Companion {
	return func(_ context.Context, factory informers.SharedInformerFactory, events record.EventRecorder) (func(context.Context), error) {
		o := cfg.orphans
		if o.interval == 0 {
			klog.InfoS("Not looking for orphaned volumes (--orphans-interval=0)")
			return func(context.Context) {}, nil
		}
		rc := orphans.Config{
			DriverName: cfg.driverName, Volumes: d, Client: client, Recorder: events,
			Interval: o.interval, Grace: o.grace, RemoveAfter: o.removeAfter,
		}
		if cfg.mode == modeNode {
			if cfg.localBasePath == "" {
				return func(context.Context) {}, nil // no local volumes here
			}
			rc.Node = cfg.nodeID
		}
		r, err := orphans.New(rc, factory)
		if err != nil {
			return nil, err
		}
		return r.Run, nil
	}
}
