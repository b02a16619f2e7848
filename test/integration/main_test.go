// Package integration runs the real stowage binary against a real
// kube-apiserver, etcd and kube-controller-manager (the Kubernetes PV binder)
// and a real NFS server, and checks what users see: claims, PVs, events, and
// the directories on the backends. No kubelet and no scheduler run: tests set
// volume.kubernetes.io/selected-node on local claims themselves, as the
// scheduler would.
//
// run.sh starts the control plane and the NFS server and sets:
//
//	STOWAGE_TEST_KUBECONFIG      admin kubeconfig of the control plane (required)
//	STOWAGE_TEST_NFS_SERVER      NFS server address            (NFS cases skip without it)
//	STOWAGE_TEST_NFS_SHARE       its export, e.g. /export
//	STOWAGE_TEST_NFS_DIR         the local directory behind the export
//	STOWAGE_TEST_NFS_SMALL_SHARE a tiny export to fill up, e.g. /small (optional)
//	STOWAGE_BIN                  a prebuilt stowage binary (default: built from ./cmd/stowage)
//	STOWAGE_TEST_LOGS            where process logs go (default: a temporary directory)
//	STOWAGE_TEST_KEEP            if set, keep every test's logs and volumes (else only failed tests')
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// env is what TestMain found; nil fields mean "not available".
var env struct {
	kubeconfig string
	client     kubernetes.Interface
	bin        string
	logs       string
	nfs        *nfsEnv
	skipReason string
}

type nfsEnv struct {
	server, share, dir string
	smallShare         string
}

func TestMain(m *testing.M) {
	code, err := setupEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		os.Exit(1)
	}
	if code >= 0 {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// setupEnv reads the environment and builds the binary. It returns -1 to
// run the tests (which skip themselves when the environment is missing).
func setupEnv() (int, error) {
	env.kubeconfig = os.Getenv("STOWAGE_TEST_KUBECONFIG")
	if env.kubeconfig == "" {
		env.skipReason = "STOWAGE_TEST_KUBECONFIG is not set; run test/integration/run.sh (make integration), which starts a control plane and an NFS server"
		return -1, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		return 0, fmt.Errorf("STOWAGE_TEST_KUBECONFIG: %w", err)
	}
	rc.QPS, rc.Burst = 200, 400
	rc.WarningHandler = rest.NoWarnings{} // "Recycle is deprecated": we know, we implement it
	if env.client, err = kubernetes.NewForConfig(rc); err != nil {
		return 0, err
	}
	if s := os.Getenv("STOWAGE_TEST_NFS_SERVER"); s != "" {
		env.nfs = &nfsEnv{
			server: s, share: os.Getenv("STOWAGE_TEST_NFS_SHARE"), dir: os.Getenv("STOWAGE_TEST_NFS_DIR"),
			smallShare: os.Getenv("STOWAGE_TEST_NFS_SMALL_SHARE"),
		}
		if env.nfs.share == "" || env.nfs.dir == "" {
			return 0, fmt.Errorf("STOWAGE_TEST_NFS_SERVER is set but STOWAGE_TEST_NFS_SHARE or STOWAGE_TEST_NFS_DIR is not")
		}
	}
	env.logs = os.Getenv("STOWAGE_TEST_LOGS")
	if env.logs == "" {
		if env.logs, err = os.MkdirTemp("", "stowage-integration-"); err != nil {
			return 0, err
		}
	}
	env.bin = os.Getenv("STOWAGE_BIN")
	if env.bin == "" {
		env.bin = filepath.Join(env.logs, "stowage")
		if err := build(env.bin); err != nil {
			return 0, err
		}
	}
	fmt.Fprintf(os.Stderr, "integration: stowage binary %s, logs in %s\n", env.bin, env.logs)
	return -1, nil
}

// build compiles ./cmd/stowage from this module.
func build(out string) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/stowage")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build ./cmd/stowage: %w", err)
	}
	return nil
}

// needNFS skips a test that needs the NFS server when there is none.
func needNFS(t *testing.T) *nfsEnv {
	t.Helper()
	if env.nfs == nil {
		t.Skip("STOWAGE_TEST_NFS_SERVER is not set; run test/integration/run.sh, which starts NFS-Ganesha")
	}
	return env.nfs
}
