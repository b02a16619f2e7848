package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/stowage-csi/stowage/pkg/nodeloss"
	"github.com/stowage-csi/stowage/pkg/provisioner"
)

// nodeLossFlags configure the node-loss controller (pkg/nodeloss).
type nodeLossFlags struct {
	releaseAfter time.Duration
}

func (n *nodeLossFlags) bind(fs *flag.FlagSet) {
	fs.DurationVar(&n.releaseAfter, "node-loss-release-after", 0,
		"controller: delete released local PVs (Delete or Recycle policy) this long after their node was deleted or tainted node.kubernetes.io/out-of-service, writing their data off; 0 only marks and reports them")
}

func (n *nodeLossFlags) check() error {
	if n.releaseAfter < 0 {
		return fmt.Errorf("--node-loss-release-after=%s is negative; use 0 to never write volumes off", n.releaseAfter)
	}
	return nil
}

// nodeLossCompanion runs the node-loss controller in the elected
// controller, which sees every node: a node plugin cannot speak for its
// own node once that node is gone.
func nodeLossCompanion(cfg config, client kubernetes.Interface) provisioner.Companion {
	return func(_ context.Context, factory informers.SharedInformerFactory, events record.EventRecorder) (func(context.Context), error) {
		if cfg.mode != modeController {
			return func(context.Context) {}, nil
		}
		c, err := nodeloss.New(nodeloss.Config{
			DriverName: cfg.driverName, Client: client, Recorder: events, ReleaseAfter: cfg.nodeLoss.releaseAfter,
		}, factory)
		if err != nil {
			return nil, err
		}
		return c.Run, nil
	}
}
