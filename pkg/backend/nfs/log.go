package nfs

import (
	"fmt"

	"github.com/willscott/go-nfs-client/nfs/util"
	"k8s.io/klog/v2"
)

// The library logs through the standard logger, errors included, at every
// level; its errors also come back to us as return values, so route it all
// through klog at verbosity levels instead of printing to stderr.
func init() {
	util.DefaultLogger = libLogger{}
}

type libLogger struct{}

func (libLogger) SetDebug(bool) {}

func (libLogger) Errorf(format string, args ...any) {
	klog.V(2).InfoS("go-nfs-client", "msg", fmt.Sprintf(format, args...))
}

func (libLogger) Infof(format string, args ...any) {
	klog.V(4).InfoS("go-nfs-client", "msg", fmt.Sprintf(format, args...))
}

func (libLogger) Debugf(format string, args ...any) {
	if klog.V(6).Enabled() {
		klog.V(6).InfoS("go-nfs-client", "msg", fmt.Sprintf(format, args...))
	}
}
