// Package registration announces the node plugin to kubelet, which is what
// node-driver-registrar does in other drivers; serving it in-process saves a
// sidecar and keeps the node plugin one container.
package registration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// server answers kubelet's plugin watcher.
type server struct {
	registerapi.UnimplementedRegistrationServer
	driverName string
	endpoint   string // the CSI socket as kubelet sees it
}

func (s *server) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              s.driverName,
		Endpoint:          s.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

func (s *server) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if !st.PluginRegistered {
		klog.ErrorS(nil, "Kubelet did not register the plugin", "error", st.Error)
	} else {
		klog.InfoS("Registered with kubelet", "driver", s.driverName)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// Serve creates <dir>/<driverName>-reg.sock, where kubelet's plugin watcher
// finds it, and answers until ctx is done.
func Serve(ctx context.Context, dir, driverName, kubeletEndpoint string) error {
	sock := filepath.Join(dir, driverName+"-reg.sock")
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove stale registration socket %s: %w", sock, err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on registration socket %s: %w", sock, err)
	}
	s := grpc.NewServer()
	registerapi.RegisterRegistrationServer(s, &server{driverName: driverName, endpoint: kubeletEndpoint})
	go func() {
		<-ctx.Done()
		s.Stop()
		os.Remove(sock)
	}()
	klog.InfoS("Serving kubelet plugin registration", "socket", sock, "endpoint", kubeletEndpoint)
	return s.Serve(l)
}
