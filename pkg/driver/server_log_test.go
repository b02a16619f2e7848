package driver

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
)

// The per-request log must never print a secret, at any verbosity.
func TestLogCallsStripsSecrets(t *testing.T) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"v": "5", "logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := fs.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	klog.SetOutput(&out)
	t.Cleanup(func() {
		_ = fs.Set("v", "0")
		_ = fs.Set("logtostderr", "true")
		klog.SetOutput(os.Stderr)
	})

	const secret = "hunter2-do-not-log"
	req := &csi.NodePublishVolumeRequest{
		VolumeId:   "nfs#server#/export#vol",
		TargetPath: "/var/lib/kubelet/pods/p/volumes/v/mount",
		Secrets:    map[string]string{"password": secret},
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Node/NodePublishVolume"}
	_, err := logCalls(context.Background(), req, info, func(context.Context, any) (any, error) {
		return &csi.NodePublishVolumeResponse{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	klog.Flush()

	logged := out.String()
	if !strings.Contains(logged, "NodePublishVolume") || !strings.Contains(logged, req.TargetPath) {
		t.Fatalf("the request was not logged at -v=5; got:\n%s", logged)
	}
	if strings.Contains(logged, secret) {
		t.Errorf("the log shows the secret:\n%s", logged)
	}
	if !strings.Contains(logged, "***stripped***") {
		t.Errorf("the log does not say that a secret was stripped:\n%s", logged)
	}
}
