package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

type mode string

const (
	modeController mode = "controller"
	modeNode       mode = "node"
)

// config holds the flags of both modes.
type config struct {
	mode            mode
	endpoint        string
	driverName      string
	healthAddr      string
	kubeconfig      string
	provisioner     bool
	leaderElect     bool
	leaderNamespace string
	qps             float64
	burst           int
	capacity        capacityFlags
	orphans         orphanFlags
	nodeLoss        nodeLossFlags // controller only
	snapshots       bool

	// node mode
	nodeID          string
	localBasePath   string
	registrationDir string
	pluginEndpoint  string
}

func (c *config) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix socket)")
	fs.StringVar(&c.driverName, "driver-name", "csi.stowage.io", "CSI driver name, also the provisioner name")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster configuration")
	fs.BoolVar(&c.provisioner, "provisioner", true, "run the StorageClass provisioner and recycler (needs the Kubernetes API)")
	fs.Float64Var(&c.qps, "kube-api-qps", 300, "queries per second to the Kubernetes API")
	fs.IntVar(&c.burst, "kube-api-burst", 600, "burst of queries to the Kubernetes API")
	c.capacity.bind(fs)
	c.orphans.bind(fs)
	fs.BoolVar(&c.snapshots, "snapshots", true, "take the VolumeSnapshotContents of this instance's volumes (needs the snapshot CRDs and rights)")
	if c.mode == modeController {
		fs.StringVar(&c.healthAddr, "health-addr", ":9808", "address of /healthz and /metrics; empty disables")
		fs.BoolVar(&c.leaderElect, "leader-elect", true, "elect a leader among controller replicas before provisioning")
		fs.StringVar(&c.leaderNamespace, "leader-elect-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader election lease")
		c.nodeLoss.bind(fs)
		return
	}
	fs.StringVar(&c.healthAddr, "health-addr", ":9809", "address of /healthz and /metrics; empty disables")
	fs.StringVar(&c.nodeID, "node-id", os.Getenv("NODE_NAME"), "this node's name (defaults to $NODE_NAME)")
	fs.StringVar(&c.localBasePath, "local-base-path", "/var/lib/stowage/local", "directory that holds local volumes; empty disables the local backend")
	fs.StringVar(&c.registrationDir, "kubelet-registration-dir", "/registration", "kubelet plugin registration directory; empty skips registration")
	fs.StringVar(&c.pluginEndpoint, "kubelet-plugin-endpoint", "/var/lib/kubelet/plugins/csi.stowage.io/csi.sock", "the CSI socket path as kubelet sees it")
}

// check reports the first configuration mistake in one line.
func (c *config) check() error {
	if c.driverName == "" {
		return fmt.Errorf("--driver-name is empty")
	}
	if c.qps <= 0 || c.burst <= 0 {
		return fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive")
	}
	if err := c.orphans.check(); err != nil {
		return err
	}
	if err := c.nodeLoss.check(); err != nil {
		return err
	}
	if c.kubeconfig != "" {
		if _, err := os.Stat(c.kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %v", err)
		}
	}
	if c.mode == modeNode {
		if c.nodeID == "" {
			return fmt.Errorf("--node-id is empty (set it or $NODE_NAME)")
		}
		if c.localBasePath != "" && !filepath.IsAbs(c.localBasePath) {
			return fmt.Errorf("--local-base-path %q must be an absolute path", c.localBasePath)
		}
	}
	if c.mode == modeController && c.leaderElect && c.provisioner && c.leaderNamespace == "" {
		return fmt.Errorf("--leader-elect needs --leader-elect-namespace (or $POD_NAMESPACE)")
	}
	return nil
}
