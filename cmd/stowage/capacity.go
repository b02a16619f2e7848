package main

import (
	"context"
	"flag"
	"os"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/stowage-csi/stowage/pkg/capacity"
	"github.com/stowage-csi/stowage/pkg/driver"
	"github.com/stowage-csi/stowage/pkg/provisioner"
)

// capacityFlags configure the CSIStorageCapacity publisher (pkg/capacity).
type capacityFlags struct {
	enabled   bool
	interval  time.Duration
	namespace string
}

func (c *capacityFlags) bind(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "capacity", true,
		"publish CSIStorageCapacity objects so that the scheduler places pods with fresh claims only where they fit (with the provisioner)")
	fs.DurationVar(&c.interval, "capacity-poll-interval", capacity.DefaultInterval,
		"how often capacity is recomputed without an event (volumes made or deleted here refresh it at once)")
	fs.StringVar(&c.namespace, "capacity-namespace", os.Getenv("POD_NAMESPACE"),
		"namespace of the CSIStorageCapacity objects (defaults to $POD_NAMESPACE)")
}

// capacityCompanion is the publisher of this mode, run by the provisioner:
// per node in the node plugin (local classes), on the leader in the
// controller (NFS classes). To refresh it after something outside Stowage's
// own volumes changed the numbers, keep the *capacity.Publisher from
// newCapacityPublisher and call its Trigger.
func capacityCompanion(cfg config, client kubernetes.Interface, d *driver.Driver) provisioner.Companion {
	p := newCapacityPublisher(cfg, client, d)
	if p == nil {
		return func(context.Context, informers.SharedInformerFactory, record.EventRecorder) (func(context.Context), error) {
			return func(context.Context) {}, nil
		}
	}
	return p.Start
}

// newCapacityPublisher returns nil when publishing is off or cannot work.
func newCapacityPublisher(cfg config, client kubernetes.Interface, d *driver.Driver) *capacity.Publisher {
	c := cfg.capacity
	if !c.enabled {
		klog.InfoS("Not publishing CSIStorageCapacity (--capacity=false)")
		return nil
	}
	if c.namespace == "" {
		// Run by hand or by an old manifest: everything else still works.
		klog.ErrorS(nil, "Not publishing CSIStorageCapacity: no namespace for the objects; set --capacity-namespace or $POD_NAMESPACE. "+
			"Without them a CSIDriver with storageCapacity: true leaves pods with fresh claims of these classes Pending")
		return nil
	}
	pc := capacity.Config{
		DriverName: cfg.driverName, Backend: backendOf(cfg.mode), NodeName: cfg.nodeID,
		Namespace: c.namespace, Client: client, Capacity: d, Interval: c.interval,
	}
	if cfg.mode == modeNode {
		pc.Owner = capacity.NodeOwner(client, cfg.nodeID)
	} else {
		pc.Owner = capacity.DeploymentOwner(client, c.namespace, os.Getenv("POD_NAME"))
	}
	p, err := capacity.New(pc)
	if err != nil {
		klog.ErrorS(err, "Not publishing CSIStorageCapacity")
		return nil
	}
	return p
}
